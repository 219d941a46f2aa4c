"""``--workers N`` / ``--ray ADDRESS``: evaluate, sweep, sensitivity and search on Ray workers.

A thin client of :mod:`squeezelens.engine.distributed`: the flags become a
:class:`ClusterSpec` (checked before any slow work, Ray's absence included), and a
:class:`ParallelJob` gives a command its one progress bar over all workers (images
done, images/s, ETA, tasks done), its task folder (finished tasks, so a rerun
resumes) and its cluster record (``cluster.json``: nodes, CPUs, GPUs, workers and
per-task timings).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from squeezelens.cli.common import say
from squeezelens.cli.progress import ProgressBar


def add_parallel_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--ray`` (evaluate, sweep, sensitivity, search)."""
    group = parser.add_argument_group(
        "parallel (Ray, an optional extra: pip install 'squeezelens[distributed]')"
    )
    group.add_argument("--workers", type=int, metavar="N",
                       help="run on N Ray workers: a local Ray runtime on this machine, or N "
                       "workers of the --ray cluster")  # fmt: skip
    group.add_argument("--ray", metavar="ADDRESS",
                       help="join a running Ray cluster (host:port, or auto); workers default to "
                       "one per CPU (per GPU where there are GPUs)")  # fmt: skip


def parallel_spec(args):
    """The flags' ClusterSpec, or None without --workers/--ray; InputError (one line) for a bad
    value or when Ray is not installed."""
    from squeezelens.engine.distributed import ClusterSpec, import_ray

    if getattr(args, "workers", None) is None and getattr(args, "ray", None) is None:
        return None
    spec = ClusterSpec(workers=args.workers, address=args.ray)
    import_ray()
    return spec


class ParallelJob:
    """One command's run on Ray: the model's payload, progress bar, task folder and record.

    tasks_dir: where finished tasks are kept until the command's output is written
    (None: not kept).  record: the cluster.json to append this run to (None: none).
    """

    def __init__(self, spec, model, label: str, tasks_dir: Path | None, record: Path | None):
        from squeezelens.engine.distributed import ModelPayload, TaskStore

        self.spec, self.record = spec, record
        self.stage = ""  # shown before the task counts (the search's phase)
        self.payload = ModelPayload.from_model(model)
        self.bar = ProgressBar(label, unit="img")
        self.store = (
            None
            if tasks_dir is None
            else TaskStore(tasks_dir, self.payload.identity, self.payload.class_names)
        )

    def on_status(self, status) -> None:
        retried = f", {status.retries} retried" if status.retries else ""
        stage = f"{self.stage}, " if self.stage else ""
        self.bar.note(f"{stage}tasks {status.tasks_done}/{status.tasks_total}{retried}")
        self.bar(status.images_done, status.images_total)

    def announce(self, pool) -> None:
        cluster, res = pool.cluster, pool.resources
        cpus, gpus, nodes = cluster["cpus"], cluster["gpus"], len(cluster["nodes"])
        gpu = f", {res.num_gpus:g} GPU" if res.num_gpus else ""
        say(f"Ray: {pool.size} workers on {nodes} node{'s' * (nodes != 1)} ({cpus:g} CPUs, "
            f"{gpus:g} GPUs), {res.threads} CPU thread{'s' * (res.threads != 1)}{gpu} each")  # fmt: skip

    def evaluate(self, dataset, quant, protocol: str, on_image=None):
        """The EvalResult of ``quant`` on ``dataset`` (what the single-process evaluate gives)."""
        from squeezelens.engine.distributed import evaluate_on_pool, open_pool

        with open_pool(self.payload, self.spec, self.record) as pool:
            self.announce(pool)
            return evaluate_on_pool(
                pool, dataset, quant, protocol, self.store, on_image, self.on_status
            )

    def points(self, dataset, prune: bool):
        """A DetectPoints for run_sweep / layer_sensitivity.  prune: drop each point's task
        files once the caller has taken its detections (a sweep has its row by then)."""
        from squeezelens.engine.distributed import point_source

        return point_source(self.payload, self.spec, dataset, self.store, self.record,
                            self.on_status, prune=prune, on_pool=self.announce)  # fmt: skip

    def scorer(self, dataset, protocol: str):
        """The search's Scorer on Ray (a context manager: the pool stays open until it ends)."""
        from squeezelens.engine.distributed import PoolScorer

        return PoolScorer(self.payload, self.spec, dataset, protocol, self.store, self.record,
                          self.on_status, on_pool=self.announce)  # fmt: skip

    def finish(self) -> None:
        """The command's output is written: drop the task files."""
        if self.store is not None:
            self.store.remove()
