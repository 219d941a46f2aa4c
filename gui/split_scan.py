"""The image browser's counts: detecting the whole split, and recounting its rows.

A collaborator of :class:`gui.controller.Controller`: after a config change the
model worker's ``scan`` lane detects every image of the split for both compared
configs, in chunks, so the browser can show per-image counts and sort by how
much quantization changed; when the score threshold moves, the ``io`` worker
recounts the scanned rows.  What it needs from the controller is passed in
explicitly: the two runners, ``current()`` (the loaded model and the key of the
configs being compared) and ``calibration`` (for activation bits).  The scan counts its
rows on the worker too (with labels, the devkit's matching: true positives lost).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QObject, QTimer

from squeezelens.engine.types import Detections, ImageRecord
from squeezelens.gui.facts import image_counts
from squeezelens.gui.model_handle import Calibration, ConfigKey, ModelHandle
from squeezelens.gui.state import AppState, ImageCounts
from squeezelens.gui.workers import JobContext, LatestJobRunner

SCAN_CHUNK = 8
RECOUNT_CHUNK = 256  # rows per partial result of a recount (a yield point between chunks)
SCAN_DELAY_MS = 300  # after a config change the split's scan waits for the user to pause
RECOUNT_DELAY_MS = 150

Current = Callable[[], tuple[ModelHandle | None, ConfigKey]]
Pairs = dict[int, tuple[Detections, Detections]]


class SplitScan(QObject):
    """Scanned (reference, other) detections per image of the split, and their counts.

    Interface: :meth:`store` (a detection of the shown image joins the scan),
    :meth:`restart` (scan what is missing now), :meth:`config_changed` (forget the old
    configs' pairs, scan once the user pauses), :meth:`recount_later` (the threshold
    moved), :meth:`stop`; :attr:`pairs` (index -> (reference, other) detections) for
    :attr:`key`, and :attr:`timers` (delayed work still to come).
    """

    def __init__(self, state: AppState, model_runner: LatestJobRunner,
                 io_runner: LatestJobRunner, current: Current, calibration: Calibration,
                 parent: QObject | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.state, self.model_runner, self.io_runner = state, model_runner, io_runner
        self.current, self.calibration = current, calibration
        self.pairs: Pairs = {}
        self.key: ConfigKey | None = None  # the configs the pairs were computed for
        self._scan_timer = QTimer(self, singleShot=True, interval=SCAN_DELAY_MS)
        self._scan_timer.timeout.connect(self.restart)
        self._recount_timer = QTimer(self, singleShot=True, interval=RECOUNT_DELAY_MS)
        self._recount_timer.timeout.connect(self._recount_all)
        self.timers = (self._scan_timer, self._recount_timer)

    # ------------------------------------------------------------- interface
    def store(self, key: ConfigKey, index: int, ref: Detections, other: Detections,
              counts: ImageCounts | None = None) -> None:  # fmt: skip
        """Keep one image's pair (forgetting pairs of other configs) and publish its counts
        (``counts``: already computed on a worker at the current threshold)."""
        self._reset(key)
        self.pairs[index] = (ref, other)
        self.state.set_counts(index, counts or self._counts(index, ref, other))

    def config_changed(self) -> None:
        """The compared configs changed: drop the old scan, rescan once the user pauses
        (a burst of releases costs no stale scan steps in front of the next detection)."""
        self.model_runner.cancel("scan")
        self._reset(self.current()[1])
        self._scan_timer.start()

    def recount_later(self) -> None:
        """The threshold moved: recount the scanned rows after a short pause."""
        self._recount_timer.start()

    def stop(self) -> None:
        for timer in self.timers:
            timer.stop()

    def restart(self) -> None:
        """Detect every image of the dataset not scanned yet (for the browser's counts)."""
        self._scan_timer.stop()
        (handle, key), dataset = self.current(), self.state.dataset
        if handle is None or dataset is None or not len(dataset):
            return
        self._reset(key)
        if key.int8 and handle.int8 is None:  # INT8 still converting
            return
        todo = [i for i in range(len(dataset)) if i not in self.pairs]
        if todo:
            names = self.state.model.class_names if self.state.model else ()
            job = _scan_job(handle, key, dataset.records, todo, self.calibration, names,
                            lambda: self.state.threshold)  # fmt: skip
            self.model_runner.submit("scan", job, "scan", on_partial=self._scanned)

    # -------------------------------------------------------------- internals
    def _reset(self, key: ConfigKey) -> None:
        """Forget the scanned pairs (and the browser's counts) of another configuration."""
        if key != self.key:
            self.pairs, self.key = {}, key
            self.state.reset_counts()

    def _counts(self, index: int, ref: Detections, other: Detections) -> ImageCounts:
        record = self.state.dataset.records[index] if self.state.dataset else None
        names = self.state.model.class_names if self.state.model else ()
        return image_counts(record, names, ref, other, self.state.threshold)

    def _scanned(self, value: tuple[ConfigKey, float, list]) -> None:
        key, t, rows = value
        if key != self.current()[1]:
            return
        current = t == self.state.threshold  # else recounted here at the new threshold
        for index, ref, other, counts in rows:
            self.store(key, index, ref, other, counts if current else None)

    def _recount_all(self) -> None:
        """Recount every scanned row at the new threshold on the io worker, in chunks."""
        dataset = self.state.dataset
        if dataset is None or not self.pairs:
            return
        pairs, key, t = list(self.pairs.items()), self.key, self.state.threshold
        records = dataset.records
        names = self.state.model.class_names if self.state.model else ()

        def recount(ctx: JobContext):
            for start in range(0, len(pairs), RECOUNT_CHUNK):
                chunk = pairs[start : start + RECOUNT_CHUNK]
                yield key, t, {i: image_counts(records[i], names, r, o, t) for i, (r, o) in chunk}

        self.io_runner.submit("recount", recount, "recount", on_partial=self._recounted)

    def _recounted(self, value: tuple[ConfigKey, float, dict[int, ImageCounts]]) -> None:
        key, t, counts = value
        if key == self.key and t == self.state.threshold:
            self.state.update_counts(counts)


def _scan_job(handle: ModelHandle, key: ConfigKey, records: Sequence[ImageRecord],
              todo: list[int], calibration: Calibration, names: tuple[str, ...],
              threshold: Callable[[], float]) -> Callable[[JobContext], Any]:  # fmt: skip
    """The scan of ``todo`` (indices into ``records``) on the model worker, in chunks; each
    chunk's rows are counted there too (the devkit's matching costs ~1 ms an image) at the
    threshold of the moment, which every partial result carries."""

    def detect(ctx: JobContext, images: dict, i: int, config: Any, int8: bool = False):
        from squeezelens.engine.data.images import read_image_bgr

        path = records[i].path
        if i not in images and handle.needs_image(path, config, int8):
            images[i] = read_image_bgr(path)
            ctx.checkpoint()  # a live request waits for one decode or one forward at most
        dets = handle.detect(path, config, calibration, int8, images.get(i), keep=False)
        ctx.checkpoint()
        return dets

    def scan(ctx: JobContext):
        for start in range(0, len(todo), SCAN_CHUNK):
            chunk = todo[start : start + SCAN_CHUNK]
            images: dict[int, Any] = {}  # each image decoded once for both configs
            # reference first, then the other config: fewer weight swaps
            refs = [detect(ctx, images, i, key.ref) for i in chunk]
            others = [detect(ctx, images, i, key.other, key.int8) for i in chunk]
            t = threshold()
            counts = [image_counts(records[i], names, r, o, t)
                      for i, r, o in zip(chunk, refs, others)]  # fmt: skip
            yield key, t, list(zip(chunk, refs, others, counts))

    return scan
