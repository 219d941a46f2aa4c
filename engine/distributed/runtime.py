"""The Ray runtime: importing Ray (an optional extra), starting or joining it, and
how many CPU threads and GPUs each worker gets.

Resource rule (:func:`worker_resources`), for N workers on a cluster with C CPUs and
G GPUs (a local runtime: C = this process's usable cores, G = the GPUs TensorFlow
sees here):

- each worker asks Ray for C/N CPUs (fractions allowed, so N workers always fit) and
  runs TensorFlow with ``max(1, floor(C/N))`` intra-op threads (OpenCV as many), so
  N <= C workers never run more compute threads than cores (inter-op: 1 thread for a
  single-threaded worker, else 2, as a fire module has two independent convolutions);
- with G > 0, each worker also asks for ``min(1, G/N)`` GPUs: Ray then shows it its
  GPU (``CUDA_VISIBLE_DEVICES``), TensorFlow runs the forward there, and workers
  sharing a GPU grow their GPU memory as needed instead of taking all of it.

Default worker count (:func:`default_workers`) when joining a cluster without
``workers``: one per GPU when there are GPUs, else one per CPU (single-threaded
workers give the most images per core; measured in ``benchmarks/bench_distributed.py``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from squeezelens.engine.errors import InputError

EXTRA = "squeezelens[distributed]"
MISSING_RAY = f"parallel runs need Ray, an optional dependency: pip install '{EXTRA}'"
MAX_WORKERS = 4096
_PRECISION = 10_000  # Ray accounts resources in units of 1e-4


def import_ray():
    """The ``ray`` module, or a one-line InputError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise InputError(MISSING_RAY) from None
    return ray


@dataclass(frozen=True)
class ClusterSpec:
    """Where a parallel job runs.

    workers: Ray workers (actors) to start; None only with ``address`` (then
    :func:`default_workers`).  address: None starts a local Ray runtime on this
    machine; "auto" or "host:port" joins a running cluster (``ray start --head``).
    ship_images: send the images' bytes through Ray's object store instead of
    letting workers read the files (None: only when joining a cluster, whose
    nodes need not share a filesystem).
    """

    workers: int | None = None
    address: str | None = None
    ship_images: bool | None = None

    def __post_init__(self) -> None:
        w = self.workers
        if w is None and self.address is None:
            raise InputError("give a number of workers (--workers N) or a cluster (--ray)")
        if w is not None and (isinstance(w, bool) or not isinstance(w, int)):
            raise InputError(f"--workers must be an integer, got {w!r}")
        if w is not None and not 1 <= w <= MAX_WORKERS:
            raise InputError(f"--workers must be between 1 and {MAX_WORKERS}, got {w}")
        if self.address is not None and not str(self.address).strip():
            raise InputError("--ray needs an address (host:port) or 'auto'")

    @property
    def ships_images(self) -> bool:
        return self.address is not None if self.ship_images is None else self.ship_images


@dataclass(frozen=True)
class WorkerResources:
    """What one worker asks Ray for, and the CPU threads it runs TensorFlow with."""

    num_cpus: float
    num_gpus: float
    threads: int


def _floor4(value: float) -> float:
    return math.floor(value * _PRECISION) / _PRECISION


def worker_resources(cpus: float, gpus: float, workers: int) -> WorkerResources:
    """The resource rule of the module docstring for ``workers`` on ``cpus`` / ``gpus``."""
    if workers < 1:
        raise InputError(f"need at least one worker, got {workers}")
    share = cpus / workers
    gpu_share = min(1.0, _floor4(gpus / workers)) if gpus > 0 else 0.0
    return WorkerResources(
        num_cpus=max(_floor4(share), 1 / _PRECISION), num_gpus=gpu_share, threads=max(1, int(share))
    )


def default_workers(cpus: float, gpus: float) -> int:
    """Workers to start on a cluster when none are asked for: one per GPU, else per CPU."""
    return max(1, int(gpus) if gpus >= 1 else int(cpus))


def local_gpus() -> int:
    """GPUs TensorFlow sees in this process (what a local runtime offers its workers)."""
    from squeezelens.engine.tf_runtime import import_tf

    return len(import_tf().config.list_physical_devices("GPU"))


class Runtime:
    """A context manager: Ray started locally or joined, shut down on exit if started here.

    A runtime this process already initialised (a test's, a notebook's) is reused as is.
    """

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.ray = import_ray()
        self.owned = False

    def __enter__(self) -> Runtime:
        ray = self.ray
        if ray.is_initialized():
            return self
        quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
        if self.spec.address is not None:
            from squeezelens.engine.distributed.reach import check_reachable

            check_reachable(self.spec.address)  # ray.init would retry a dead address for minutes
            try:
                ray.init(address=self.spec.address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError(
                    f"cannot join the Ray cluster at {self.spec.address} ({exc})"
                ) from None
        else:
            from squeezelens.engine.prefetch import usable_cpus

            # "local": a new runtime even where `ray start` left a cluster on this machine
            ray.init(address="local", num_cpus=usable_cpus(), num_gpus=local_gpus(), **quiet)
        self.owned = True
        return self

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.ray.shutdown()
            self.owned = False

    def totals(self) -> tuple[float, float]:
        """(CPUs, GPUs) of the whole cluster."""
        res = self.ray.cluster_resources()
        return float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))

    def resources(self) -> tuple[int, WorkerResources]:
        """(workers, what each asks for) under the spec and the resource rule."""
        cpus, gpus = self.totals()
        workers = self.spec.workers or default_workers(cpus, gpus)
        return workers, worker_resources(cpus, gpus, workers)

    def record(self) -> dict:
        """The cluster as the output folder records it: address, totals and live nodes."""
        cpus, gpus = self.totals()
        nodes = [
            {
                "node_id": n.get("NodeID"),
                "host": n.get("NodeManagerHostname"),
                "address": n.get("NodeManagerAddress"),
                "cpus": float(n.get("Resources", {}).get("CPU", 0.0)),
                "gpus": float(n.get("Resources", {}).get("GPU", 0.0)),
                "memory_bytes": int(n.get("Resources", {}).get("memory", 0)),
            }
            for n in self.ray.nodes()
            if n.get("Alive")
        ]
        return {
            "address": self.spec.address or "local",
            "ray_version": self.ray.__version__,
            "cpus": cpus,
            "gpus": gpus,
            "nodes": nodes,
        }
