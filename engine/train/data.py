"""Training batches from a KITTI dataset, reproducible from (seed, step), read ahead in a thread.

Every batch is a pure function of the run's seed and the step number: the
sample order is a per-epoch permutation drawn from ``(seed, 0, epoch)`` and the
augmentation of example i of step s uses ``(seed, 1, s, i)``.  So a resumed run
reads exactly the batches the killed one would have read, and prefetching
ahead does not disturb any random state that would need saving.  The other
random draws of a run follow the same scheme: initial weights ``(seed, 2)``
(:func:`engine.train.state.init_weights`), the dropout mask of step s
``(seed, 3, s)`` (:func:`dropout_seed`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.anchors import anchor_grid
from squeezelens.engine.data.images import read_image_bgr
from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec
from squeezelens.engine.train.assign import build_targets, objects_to_boxes
from squeezelens.engine.train.augment import (
    DEFAULT_AUGMENTATION,
    AugmentConfig,
    augment,
    prepare_image,
)
from squeezelens.engine.types import ImageRecord


@dataclass(frozen=True)
class Batch:
    """One training batch (B images, A anchors, C classes).

    images (B, h, w, 3) float32 mean-subtracted BGR; input_mask (B, A, 1);
    box_delta (B, A, 4); box (B, A, 4) cxcywh; labels (B, A, C); all float32.
    """

    step: int
    images: np.ndarray
    input_mask: np.ndarray
    box_delta: np.ndarray
    box: np.ndarray
    labels: np.ndarray

    @property
    def num_objects(self) -> int:
        return int(self.input_mask.sum())


class BatchSource:
    """Builds the batch of any step from labelled image records."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        spec: ArchSpec,
        batch: int,
        seed: int = 0,
        augmentation: AugmentConfig | None = DEFAULT_AUGMENTATION,
        reader: Callable[[str], np.ndarray] = read_image_bgr,
    ) -> None:
        if not records:
            raise InputError("the training set holds no images")
        unlabelled = [r.stem for r in records if not r.has_labels]
        if unlabelled:
            raise InputError(f"training needs labels; image {unlabelled[0]} has no label file")
        if batch < 1:
            raise InputError(f"batch size must be at least 1, got {batch}")
        self.records = tuple(records)
        self.spec, self.batch, self.seed = spec, int(batch), int(seed)
        self.augmentation = augmentation
        self.reader = reader
        self.anchors = anchor_grid(spec)
        self.truth = [objects_to_boxes(r.objects, spec.class_names) for r in self.records]
        self._perms: dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            rng = np.random.default_rng([self.seed, 0, epoch])
            self._perms[epoch] = rng.permutation(len(self.records))
        return self._perms[epoch]

    def indices(self, step: int) -> list[int]:
        """Record indices of a step's batch: positions step*B .. step*B+B-1 of the epoch stream."""
        n = len(self.records)
        return [
            int(self._permutation(p // n)[p % n])
            for p in range(step * self.batch, (step + 1) * self.batch)
        ]

    def example(self, index: int, rng: np.random.Generator | None):
        """(image (h, w, 3) float32, Targets) of one record, augmented with rng."""
        record = self.records[index]
        image = prepare_image(self.reader(record.path), self.spec.bgr_means)
        boxes, ids = self.truth[index]
        image, boxes = augment(
            image, boxes, self.spec.input_size, rng, self.augmentation or DEFAULT_AUGMENTATION
        )
        ok = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        targets = build_targets(boxes[ok], ids[ok], self.anchors, self.spec.num_classes)
        return image, targets

    def batch_at(self, step: int) -> Batch:
        """The batch of a step (same result however often or in whatever order it is asked)."""
        examples = []
        for i, index in enumerate(self.indices(step)):
            rng = np.random.default_rng([self.seed, 1, step, i]) if self.augmentation else None
            examples.append(self.example(index, rng))
        t = [e[1] for e in examples]
        return Batch(
            step=step,
            images=np.stack([e[0] for e in examples]),
            input_mask=np.stack([x.input_mask for x in t]),
            box_delta=np.stack([x.box_delta for x in t]),
            box=np.stack([x.box for x in t]),
            labels=np.stack([x.labels for x in t]),
        )


def dropout_seed(seed: int, step: int) -> np.ndarray:
    """The dropout layer's seed for a step, drawn from ``(seed, 3, step)``: two int64
    values below 2**32 (the state of Keras' stateless dropout)."""
    words = np.random.SeedSequence([int(seed), 3, int(step)]).generate_state(2, np.uint32)
    return words.astype(np.int64)


_END = object()


class Prefetcher:
    """Iterate ``make(step)`` for step in [start, stop), computed ``depth`` ahead in a thread.

    The thread overlaps image decoding / augmentation (OpenCV and numpy release
    the GIL) with the TensorFlow step.  An exception in ``make`` is re-raised
    in the consumer; :meth:`close` (or leaving the ``with`` block) stops the thread.
    """

    def __init__(self, make: Callable[[int], Batch], start: int, stop: int, depth: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(make, start, stop), name="train-prefetch", daemon=True
        )
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, make: Callable[[int], Batch], start: int, stop: int) -> None:
        for step in range(start, stop):
            try:
                item = make(step)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                self._put(exc)
                return
            if not self._put(item):
                return
        self._put(_END)

    def __iter__(self) -> Iterator[Batch]:
        while (item := self._queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
