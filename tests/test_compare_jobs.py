"""Float vs quantized comparison, prefetching and cancellation."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from squeezelens.engine.compare import compare_detections
from squeezelens.engine.errors import Cancelled
from squeezelens.engine.jobs import CancelToken, check
from squeezelens.engine.prefetch import prefetch
from squeezelens.engine.types import Detections


def dets(boxes, scores, labels):
    return Detections(
        np.array(boxes, float).reshape(-1, 4), np.array(scores, float), np.array(labels)
    )


def test_compare_counts_lost_gained_and_flips():
    ref = dets([[0, 0, 10, 10], [50, 50, 60, 60], [100, 0, 120, 20]], [0.9, 0.8, 0.7], [0, 1, 0])
    other = dets(
        [[1, 0, 11, 10], [50, 50, 60, 61], [200, 200, 210, 210]], [0.85, 0.6, 0.5], [0, 2, 1]
    )
    c = compare_detections(ref, other, 0.5)
    assert [(m.ref, m.other) for m in c.matches] == [(0, 0), (1, 1)]
    assert c.lost == (2,) and c.gained == (2,)
    assert [m.ref for m in c.flips] == [1]
    assert c.change_count == 3
    m = c.counterpart_of_ref(0)
    assert m.iou == pytest.approx(90 / 110) and m.score_shift == pytest.approx(-0.05)
    assert c.counterpart_of_other(2) is None


def test_compare_is_one_to_one_and_prefers_best_iou():
    ref = dets([[0, 0, 10, 10]], [0.9], [0])
    other = dets([[2, 0, 12, 10], [0, 0, 10, 10]], [0.9, 0.5], [0, 0])
    c = compare_detections(ref, other)
    assert [(m.ref, m.other) for m in c.matches] == [(0, 1)]
    assert c.gained == (0,)


def test_identical_sets_have_no_changes():
    a = dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.3], [0, 2])
    c = compare_detections(a, a)
    assert c.change_count == 0 and len(c.matches) == 2
    assert all(m.iou == 1.0 and m.score_shift == 0 for m in c.matches)


def test_empty_sets():
    e = Detections.empty()
    a = dets([[0, 0, 10, 10]], [0.9], [0])
    assert compare_detections(e, a).gained == (0,)
    assert compare_detections(a, e).lost == (0,)


def test_prefetch_keeps_order_and_hands_over_errors():
    def load(i):
        if i == 3:
            raise ValueError("bad item")
        return i * i

    got = list(prefetch(range(6), load, depth=2))
    assert [i for i, _ in got] == list(range(6))
    assert isinstance(got[3][1], ValueError)
    assert [r for i, r in got if i != 3] == [0, 1, 4, 16, 25]


def test_prefetch_stops_its_thread_when_abandoned():
    before = threading.active_count()
    it = prefetch(range(1000), lambda i: i, depth=2)
    next(it)
    it.close()
    assert threading.active_count() <= before


def test_cancel_token():
    token = CancelToken()
    check(token)
    check(None)
    token.cancel()
    assert token.cancelled
    with pytest.raises(Cancelled):
        check(token)


def test_detections_sorted_and_thresholded():
    d = dets([[0, 0, 1, 1], [0, 0, 2, 2], [0, 0, 3, 3]], [0.2, 0.9, 0.5], [0, 1, 2])
    assert d.scores.tolist() == pytest.approx([0.9, 0.5, 0.2])
    assert d.labels.tolist() == [1, 2, 0]
    assert len(d.above(0.5)) == 2
    assert d.to_records()[0] == {
        "class": "pedestrian",
        "score": pytest.approx(0.9),
        "box": [0.0, 0.0, 2.0, 2.0],
    }
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros(2))
