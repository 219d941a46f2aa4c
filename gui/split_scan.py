"""The image browser's counts: detecting the whole split, and recounting its rows.

A mixin of :class:`gui.controller.Controller` (it shares the controller's
workers, state and detection helpers): after a config change the ``scan`` lane
detects every image of the split for both compared configs, in chunks, so the
browser can show per-image counts and sort by how much quantization changed; when
the score threshold moves, the ``io`` worker recounts the scanned rows.
"""

from __future__ import annotations

from typing import Any

from squeezelens.engine.types import Detections
from squeezelens.gui.facts import image_counts
from squeezelens.gui.state import ImageCounts
from squeezelens.gui.workers import JobContext, JobResult

SCAN_CHUNK = 8
RECOUNT_CHUNK = 256  # rows per partial result of a recount (a yield point between chunks)


class SplitScan:
    """Scanned (reference, other) detections per image of the split, and their counts.

    Uses the controller's ``state``, ``handle``, runners, ``_scan_timer``,
    ``_recount`` and detection helpers (``_config_key``, ``_needs_image``,
    ``_detect``, ``_publish_result``).
    """

    _pairs: dict[int, tuple[Detections, Detections]]
    _pairs_key: tuple

    def _store_pair(self, key: tuple, index: int, ref: Detections, other: Detections,
                    counts: ImageCounts | None = None) -> None:  # fmt: skip
        """Keep a scanned pair and show its counts (``counts``: already computed, on a worker)."""
        if key != self._pairs_key:
            self._pairs, self._pairs_key = {}, key
        self._pairs[index] = (ref, other)
        self.state.set_counts(index, counts or self._counts(index, ref, other))

    def _counts(self, index: int, ref: Detections, other: Detections) -> ImageCounts:
        record = self.state.dataset.records[index] if self.state.dataset else None
        names = self.state.model.class_names if self.state.model else ()
        return image_counts(record, names, ref, other, self.state.threshold)

    def _on_threshold(self, _value: float) -> None:
        """The current image follows at once; the browser's counts after a short pause."""
        result = self.state.result
        if result is not None:
            self._publish_result(result.index, result.ref, result.other)
        self._recount.start()

    def _recount_all(self) -> None:
        """Recount every scanned row at the new threshold on the io worker, in chunks."""
        dataset = self.state.dataset
        if dataset is None or not self._pairs:
            return
        pairs, key, t = list(self._pairs.items()), self._pairs_key, self.state.threshold
        records = dataset.records
        names = self.state.model.class_names if self.state.model else ()

        def recount(ctx: JobContext):
            for start in range(0, len(pairs), RECOUNT_CHUNK):
                chunk = pairs[start : start + RECOUNT_CHUNK]
                yield key, t, {i: image_counts(records[i], names, r, o, t) for i, (r, o) in chunk}

        self.io_runner.submit("recount", recount, "recount")

    def _partial_recount(self, result: JobResult) -> None:
        key, t, counts = result.value
        if key == self._pairs_key and t == self.state.threshold:
            self.state.update_counts(counts)

    def _reset_pairs(self, key: tuple) -> None:
        """Forget the scanned pairs (and the browser's counts) of another configuration."""
        if key != self._pairs_key:
            self._pairs, self._pairs_key = {}, key
            self.state.reset_counts()

    # ------------------------------------------------------------------- scan
    def _restart_scan(self) -> None:
        """Detect every image of the dataset (for the browser's counts), in chunks."""
        self._scan_timer.stop()
        handle, dataset = self.handle, self.state.dataset
        if handle is None or dataset is None or not len(dataset):
            return
        key = self._config_key()
        self._reset_pairs(key)
        if key[3] and handle.int8 is None:  # INT8 still converting
            return
        todo = [i for i in range(len(dataset)) if i not in self._pairs]
        records = dataset.records
        names = self.state.model.class_names if self.state.model else ()

        def detect(ctx: JobContext, images: dict, i: int, config: Any, int8: bool = False):
            from squeezelens.engine.data.images import read_image_bgr

            path = records[i].path
            if i not in images and self._needs_image(handle, path, config, int8):
                images[i] = read_image_bgr(path)
                ctx.checkpoint()  # a live request waits for one decode or one forward at most
            dets = self._detect(handle, path, config, records, int8, images.get(i), keep=False)
            ctx.checkpoint()
            return dets

        def scan(ctx: JobContext):
            for start in range(0, len(todo), SCAN_CHUNK):
                chunk = todo[start : start + SCAN_CHUNK]
                images: dict[int, Any] = {}  # each image decoded once for both configs
                # reference first, then the other config: fewer weight swaps
                refs = [detect(ctx, images, i, key[1]) for i in chunk]
                others = [detect(ctx, images, i, key[2], key[3]) for i in chunk]
                t = self.state.threshold  # counts here: the devkit matching costs ~1 ms an image
                counts = [image_counts(records[i], names, r, o, t)
                          for i, r, o in zip(chunk, refs, others)]  # fmt: skip
                yield key, t, list(zip(chunk, refs, others, counts))

        if todo:
            self.model_runner.submit("scan", scan, "scan")

    def _partial_scan(self, result: JobResult) -> None:
        key, t, rows = result.value
        if key != self._config_key():
            return
        current = t == self.state.threshold  # else recounted here at the new threshold
        for index, ref, other, counts in rows:
            self._store_pair(key, index, ref, other, counts if current else None)

    def pair(self, index: int) -> tuple[Detections, Detections] | None:
        """The cached (reference, other) detections of an image, if scanned."""
        return self._pairs.get(index)
