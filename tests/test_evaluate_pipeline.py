"""Dataset evaluation: preprocessing in the prefetch thread, no cache hashing, same detections."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine.data.images import read_image_bgr
from engine.data.kitti import open_dataset
from engine.evaluate import detect_dataset, evaluate
from tests.test_sweep import write_tiny_kitti

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return open_dataset(write_tiny_kitti(tmp_path_factory.mktemp("kitti"), n_images=3), "val")


def test_preprocess_runs_in_the_prefetch_thread_without_hashing(
    tiny_detector, dataset, monkeypatch
):
    import engine.detector

    threads: list[str] = []
    preprocess = tiny_detector.preprocess

    def spy(image):
        threads.append(threading.current_thread().name)
        return preprocess(image)

    def no_hash(image):
        raise AssertionError("dataset evaluation must not hash images for the float cache")

    monkeypatch.setattr(tiny_detector, "preprocess", spy)
    monkeypatch.setattr(engine.detector, "_image_key", no_hash)
    got = detect_dataset(tiny_detector, dataset)
    assert threads == ["prefetch"] * len(dataset)
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
