"""The body of a Ray worker (actor): one model, built once from the shipped payload, kept
across tasks.

A task runs exactly the function the single-process job runs on the whole dataset,
here on one shard: :func:`engine.evaluate.detect_dataset` ("stream") or
:meth:`engine.sweep.PreparedInputs.detect_all` ("prepared").  Weights are quantized
per config from its seed (never per image or per shard), so every worker holding
the same config rounds to the same weights as the single-process run.

Kept between tasks, each within a byte budget (least recently used dropped first):
the prepared inputs of recent shards (a sweep runs many configs on each shard), the
float model's raw outputs on them (a search's tasks measure each config's output noise
against them, :data:`~engine.distributed.tasks.NOISE`) and, when images are shipped,
their encoded bytes.  Which shards a worker holds goes back
with each result, so the parent can send it more work on them.
"""

from __future__ import annotations

import os
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from squeezelens.engine.distributed.tasks import NOISE, Shard, Task
from squeezelens.engine.errors import InputError

PREPARED_CACHE_BYTES = 1 << 30
REFERENCE_CACHE_BYTES = 256 << 20
IMAGE_CACHE_BYTES = 256 << 20


def configure_threads(threads: int) -> None:
    """TensorFlow (intra-op ``threads``; inter-op 1 for a single thread, else 2: a fire
    module's two expand convolutions) and OpenCV threads, before any op runs; GPUs Ray gave
    this worker grow their memory instead of taking all of it."""
    import cv2

    from squeezelens.engine.tf_runtime import import_tf

    tf = import_tf()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1 if threads == 1 else 2)
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # the runtime already started in this process: keep its settings
        pass
    cv2.setNumThreads(threads)


@dataclass(frozen=True)
class TaskOutput:
    """A finished task: detections by stem, the seconds the worker spent, who ran it, and
    (a :data:`NOISE` task) the squared differences from the float output."""

    detections: dict
    seconds: float
    pid: int
    held: tuple[str, ...]  # shard ids whose inputs this worker now keeps
    error: object = None  # an engine.output_noise.OutputError


@dataclass(frozen=True)
class TaskFailure:
    """A task stopped by bad input (an unreadable image): the parent raises it as InputError."""

    problem: str
    path: str | None


@dataclass(frozen=True)
class NotLoaded:
    """The worker holds no model (Ray restarted it while idle): load it and send the task again."""


class _Lru:
    """Values by key, dropped least recently used first beyond ``budget`` bytes."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.items: OrderedDict[str, tuple[object, int]] = OrderedDict()

    def get(self, key: str):
        if key not in self.items:
            return None
        self.items.move_to_end(key)
        return self.items[key][0]

    def put(self, key: str, value, size: int) -> None:
        self.items[key] = (value, size)
        self.items.move_to_end(key)
        while len(self.items) > 1 and sum(s for _, s in self.items.values()) > self.budget:
            self.items.popitem(last=False)


class DetectorWorker:
    """A Ray actor: ``ray.remote(DetectorWorker)`` (see :class:`engine.distributed.pool.WorkerPool`)."""

    def __init__(self, threads: int) -> None:
        configure_threads(threads)
        self.threads = threads
        self.model = None
        self._prepared = _Lru(PREPARED_CACHE_BYTES)
        self._references = _Lru(REFERENCE_CACHE_BYTES)
        self._images = _Lru(IMAGE_CACHE_BYTES)

    def load(self, payload: list) -> dict:
        """Build the model from ``[ref of the ModelPayload]`` (nested: this worker fetches it).

        A method, not a constructor argument: Ray warns about (and cannot always restore)
        constructor arguments held in the object store; the pool calls it again on a
        worker Ray has restarted.
        """
        import ray

        self.model = ray.get(payload[0]).build(self.threads)
        self.drop_caches()
        return self.info()

    def info(self) -> dict:
        """Who this worker is: pid, host, Ray node, threads and GPU ids."""
        import ray

        context = ray.get_runtime_context()
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "node_id": context.get_node_id(),
            "threads": self.threads,
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
        }

    def drop_caches(self) -> None:
        """Forget the prepared inputs and image bytes kept between tasks (frees their memory)."""
        self._prepared.items.clear()
        self._references.items.clear()
        self._images.items.clear()

    def weights_sha256(self, quant) -> str:
        """SHA-256 of the weights this worker runs under ``quant`` (None: float): equal to
        the parent's for the same config and seed (quantized per config, never per task)."""
        from squeezelens.engine.provenance import weights_sha256

        return weights_sha256(self.model.quantized_weights(quant))

    def run(self, task: Task, shipped: list) -> TaskOutput | TaskFailure | NotLoaded:
        """Detections of one task; ``shipped``: [] (read the files) or [ref to the shard's
        image bytes] (a nested ref: fetched only when this worker does not hold them)."""
        if self.model is None:  # a restarted worker the pool has not reloaded yet
            return NotLoaded()
        start = time.perf_counter()
        try:
            read = self._reader(task.shard, shipped)
            detections, error = self._detect(task, read)
        except InputError as exc:
            return TaskFailure(exc.problem, exc.path)
        return TaskOutput(detections, time.perf_counter() - start, os.getpid(),
                          tuple(self._prepared.items), error)  # fmt: skip

    def _detect(self, task: Task, read) -> tuple[dict, object]:
        quant = task.point.quant
        if task.mode == "stream":
            from squeezelens.engine.data.kitti import Dataset
            from squeezelens.engine.evaluate import detect_dataset

            shard = Dataset(Path("."), "shard", task.shard.records())
            return detect_dataset(self.model, shard, quant, read=read), None
        prepared = self._prepared.get(task.shard.id)
        if prepared is None:
            from squeezelens.engine.sweep import PreparedInputs

            prepared = PreparedInputs(self.model, task.shard.records(), read=read)
            self._prepared.put(task.shard.id, prepared, prepared.inputs.nbytes)
        if task.mode != NOISE:
            return prepared.detect_all(self.model, quant), None
        from squeezelens.engine.output_noise import detect_with_error, float_outputs

        reference = self._references.get(task.shard.id)
        if reference is None:  # the float outputs: once per shard, like its inputs
            reference = float_outputs(self.model, prepared)
            self._references.put(task.shard.id, reference, reference.nbytes)
        return detect_with_error(self.model, prepared, quant, reference)

    def _reader(self, shard: Shard, shipped: list):
        """How this task reads its images: from the files, or from shipped bytes."""
        if not shipped:
            return None
        blobs = self._images.get(shard.id)
        if blobs is None:
            import ray

            blobs = dict(zip(shard.stems, ray.get(shipped[0]), strict=True))
            self._images.put(shard.id, blobs, sum(len(b) for b in blobs.values()))
        from squeezelens.engine.data.images import decode_image_bgr

        return lambda record: decode_image_bgr(blobs[record.stem], record.path)
