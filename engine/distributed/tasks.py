"""Tasks (one quantization config x one image shard) and the folder that keeps their results.

A dataset is cut into shards of consecutive images (:func:`make_shards`); their
size depends only on the dataset's size, never on the number of workers, so a
rerun with other workers finds the same shards.  Sizes are multiples of the
sweep's batch (4), so every batch of a sharded run is a batch of the
single-process run.

:class:`TaskStore` keeps each finished task's detections as one ``.npz``
(written atomically as it arrives) under ``<folder>/<config id>/<shard id>.npz``;
the config id hashes the model's identity (weights, input size, calibration,
INT8 model), the config's key and whether the task measures the output noise, so a
folder never mixes results of two models, two configs, or detections-only tasks
with detections+noise ones (whose files also hold each image's squared error).  Rerunning the same job loads them instead of running them again.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import write_bytes_atomic
from squeezelens.engine.output_noise import OutputError
from squeezelens.engine.sweep import BATCH
from squeezelens.engine.types import Detections, ImageRecord

MIN_SHARD, MAX_SHARD = 4, 64
SHARDS_PER_JOB = 16  # aim: this many shards per config (dataset size permitting)
NOISE = "prepared+noise"  # the sweep's prepared inputs, plus the ConvDet output noise (search)
MODES = ("stream", "prepared", NOISE)  # evaluate's per-image pipeline, the sweep's prepared inputs


def default_shard_size(images: int) -> int:
    """Images per shard: about 1/16 of the dataset, 4..64, a multiple of the batch."""
    size = -(-images // SHARDS_PER_JOB)
    size = -(-size // BATCH) * BATCH
    return max(MIN_SHARD, min(MAX_SHARD, size))


@dataclass(frozen=True)
class Shard:
    """Consecutive images of a dataset: ``stems`` / ``paths`` from position ``start``."""

    start: int
    stems: tuple[str, ...]
    paths: tuple[str, ...]

    @property
    def id(self) -> str:
        """``<start>-<count>-<hash of the stems>``: stable across runs of the same dataset."""
        digest = hashlib.sha256("\n".join(self.stems).encode()).hexdigest()[:12]
        return f"{self.start:06d}-{len(self.stems):04d}-{digest}"

    def __len__(self) -> int:
        return len(self.stems)

    def records(self) -> tuple[ImageRecord, ...]:
        """The shard's images as records (no labels: workers only detect)."""
        return tuple(ImageRecord(s, p) for s, p in zip(self.stems, self.paths, strict=True))


def make_shards(records: Sequence[ImageRecord], size: int | None = None) -> list[Shard]:
    """Cut ``records`` (in order) into shards of ``size`` images (default
    :func:`default_shard_size`); the last may be smaller."""
    size = size or default_shard_size(len(records))
    if size < 1:
        raise ValueError(f"shard size must be positive, got {size}")
    return [
        Shard(i, tuple(r.stem for r in chunk), tuple(str(r.path) for r in chunk))
        for i in range(0, len(records), size)
        for chunk in [records[i : i + size]]
    ]


@dataclass(frozen=True)
class Task:
    """One unit of work: the detections of ``point`` (a SweepPoint) on ``shard``.

    index: the point's position in the job (results are handed out in that order).
    mode: "stream" (evaluate's per-image pipeline, :func:`engine.evaluate.detect_dataset`),
    "prepared" (the sweep's, :meth:`engine.sweep.PreparedInputs.detect_all`) or
    :data:`NOISE` (the sweep's, plus the squared differences of the raw outputs from the
    float model's, :func:`engine.output_noise.detect_with_error`).
    """

    index: int
    point: object
    shard: Shard
    mode: str = "prepared"

    @property
    def id(self) -> str:
        return f"{self.index}/{self.shard.id}"


def pack(detections: Mapping[str, Detections]) -> dict[str, np.ndarray]:
    """Detections by stem as flat arrays (what a task file holds)."""
    stems = list(detections)
    parts = [detections[s] for s in stems]
    empty = np.zeros((0, 4), np.float32)
    return {
        "stems": np.asarray(stems, dtype=str),
        "counts": np.asarray([len(d) for d in parts], dtype=np.int64),
        "boxes_xyxy": np.concatenate([d.boxes_xyxy for d in parts]) if parts else empty,
        "scores": np.concatenate([d.scores for d in parts]) if parts else empty[:, 0],
        "labels": np.concatenate([d.labels for d in parts]).astype(np.int32)
        if parts
        else np.zeros(0, np.int32),
    }


def unpack(arrays: Mapping[str, np.ndarray], class_names: tuple[str, ...]) -> dict[str, Detections]:
    """Inverse of :func:`pack`."""
    ends = np.cumsum(arrays["counts"])
    starts = ends - arrays["counts"]
    return {
        str(stem): Detections(
            arrays["boxes_xyxy"][a:b], arrays["scores"][a:b], arrays["labels"][a:b], class_names
        )
        for stem, a, b in zip(arrays["stems"], starts, ends, strict=True)
    }


class TaskStore:
    """Finished tasks of a job under ``folder``, for the model with ``identity``."""

    def __init__(self, folder: str | Path, identity: str, class_names: tuple[str, ...]) -> None:
        self.folder = Path(folder)
        self.identity = identity
        self.class_names = tuple(class_names)

    def config_dir(self, point, mode: str = "prepared") -> Path:
        """A config's folder; tasks with the output noise (:data:`NOISE`) have their own, so
        detections-only and detections+noise results never mix."""
        kind = "\nnoise" if mode == NOISE else ""
        digest = hashlib.sha256(f"{self.identity}\n{point.key}{kind}".encode()).hexdigest()[:20]
        return self.folder / digest

    def path(self, task: Task) -> Path:
        return self.config_dir(task.point, task.mode) / f"{task.shard.id}.npz"

    def save(
        self, task: Task, detections: Mapping[str, Detections], error: OutputError | None = None
    ) -> Path:
        """Write one task's detections (and output error, for a :data:`NOISE` task) atomically."""
        arrays = pack(detections)
        if error is not None:
            arrays["error_sums"] = np.asarray([error.sums[s] for s in detections], np.float64)
            arrays["elements"] = np.asarray(error.elements, np.int64)
        buffer = io.BytesIO()
        np.savez(buffer, key=np.asarray(task.point.key), **arrays)
        return write_bytes_atomic(self.path(task), buffer.getvalue())

    def load(self, task: Task) -> dict[str, Detections] | None:
        """A finished task's detections, or None (never run, or an unreadable file)."""
        result = self.load_result(task)
        return None if result is None else result[0]

    def load_result(self, task: Task) -> tuple[dict[str, Detections], OutputError | None] | None:
        """A finished task's detections and (a :data:`NOISE` task) output error, or None."""
        path = self.path(task)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if str(arrays.pop("key")) != task.point.key or list(arrays["stems"]) != list(
                task.shard.stems
            ):
                return None
            error = None
            if task.mode == NOISE:
                sums = arrays.pop("error_sums").tolist()
                elements = int(arrays.pop("elements"))
                error = OutputError(dict(zip(task.shard.stems, sums, strict=True)), elements)
            return unpack(arrays, self.class_names), error
        except Exception:  # noqa: BLE001 - a damaged file is recomputed and replaced
            return None

    def discard(self, point, mode: str = "prepared") -> None:
        """Remove a config's task files (its result was recorded elsewhere)."""
        shutil.rmtree(self.config_dir(point, mode), ignore_errors=True)

    def remove(self) -> None:
        """Remove every task file (the job's output is written)."""
        shutil.rmtree(self.folder, ignore_errors=True)
