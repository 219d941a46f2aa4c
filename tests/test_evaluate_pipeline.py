"""Dataset evaluation: preprocessing in loader threads, no cache hashing, same detections."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from squeezelens.engine.data.images import read_image_bgr
from squeezelens.engine.data.kitti import open_dataset
from squeezelens.engine.evaluate import detect_dataset, evaluate
from tests.test_sweep import write_tiny_kitti

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return open_dataset(write_tiny_kitti(tmp_path_factory.mktemp("kitti"), n_images=3), "val")


@pytest.mark.parametrize("loading", ["auto", "bursts", "ahead"])
def test_preprocess_runs_in_the_loader_threads_without_hashing(
    tiny_detector, dataset, monkeypatch, loading
):
    import squeezelens.engine.detector as detector_module

    threads: list[str] = []
    preprocess = tiny_detector.preprocess

    def spy(image):
        threads.append(threading.current_thread().name)
        return preprocess(image)

    def no_hash(image):
        raise AssertionError("dataset evaluation must not hash images for the float cache")

    monkeypatch.setattr(tiny_detector, "preprocess", spy)
    monkeypatch.setattr(detector_module, "_image_key", no_hash)
    got = detect_dataset(tiny_detector, dataset, loading=loading)
    assert len(threads) == len(dataset) and all(t.startswith("prefetch") for t in threads)
    monkeypatch.undo()
    for record in dataset.records:
        want = tiny_detector.detect(read_image_bgr(record.path))
        np.testing.assert_array_equal(got[record.stem].boxes_xyxy, want.boxes_xyxy)
        np.testing.assert_array_equal(got[record.stem].scores, want.scores)
        np.testing.assert_array_equal(got[record.stem].labels, want.labels)


class DetectOnly:
    """A detector with only ``detect`` (no stages): evaluation falls back to it."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    @property
    def class_names(self):
        return self.inner.class_names

    def detect(self, image, quant=None, threshold=0.0):
        self.calls += 1
        return self.inner.detect(image, quant=quant, threshold=threshold)


def test_detect_only_runners_give_the_same_result(tiny_detector, dataset):
    wrapped = DetectOnly(tiny_detector)
    plain = evaluate(wrapped, dataset)
    staged = evaluate(tiny_detector, dataset)
    assert wrapped.calls == len(dataset)
    assert plain.to_json_dict() == staged.to_json_dict()


def test_bursts_keep_the_order_and_hand_over_errors():
    from squeezelens.engine.prefetch import load_in_bursts

    def load(i):
        if i == 5:
            raise ValueError("bad five")
        return i * i

    got = list(load_in_bursts(range(11), load, workers=3))
    assert [item for item, _ in got] == list(range(11))
    assert isinstance(got[5][1], ValueError)
    assert [r for i, r in got if i != 5] == [i * i for i in range(11) if i != 5]
    assert list(load_in_bursts([], load)) == []


def test_stopping_early_loads_at_most_one_more_burst():
    from squeezelens.engine.prefetch import load_in_bursts

    loaded = []
    gen = load_in_bursts(range(100), lambda i: loaded.append(i) or i, workers=2)
    assert next(gen) == (0, 0)
    gen.close()
    assert sorted(loaded) == [0, 1]


@pytest.mark.parametrize("slow_way", ["bursts", "ahead"])
def test_adaptive_loading_keeps_the_faster_way(monkeypatch, slow_way):
    import time

    import squeezelens.engine.prefetch as pf

    used: list[str] = []

    def tagged(name, real):
        def loader(items, load, *args):
            def slow_load(item):
                if name == slow_way:
                    time.sleep(0.02)
                return load(item)

            for item, result in real(items, slow_load, *args):
                used.append(name)
                yield item, result

        return loader

    monkeypatch.setattr(pf, "load_in_bursts", tagged("bursts", pf.load_in_bursts))
    monkeypatch.setattr(pf, "prefetch", tagged("ahead", pf.prefetch))
    got = list(pf.load_adaptively(range(30), lambda i: -i, probe=4))
    assert got == [(i, -i) for i in range(30)]
    fast = "ahead" if slow_way == "bursts" else "bursts"
    assert used[:8] == ["bursts"] * 4 + ["ahead"] * 4
    assert used[8:] == [fast] * 22
