"""Jobs run in a child Python process: the parent's relay and the child's entry point.

Used where a job would otherwise share the parent's interpreter lock or TensorFlow
runtime with a desktop tool's UI thread (:mod:`engine.int8.isolated`,
:mod:`engine.quant.remedies.isolated`).  The child runs ``python -m MODULE JOB_DIR``
in the job folder, prints ``progress DONE TOTAL`` lines and, for a bad input,
``error MESSAGE`` (exit 2); it writes its result into the job folder.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, Progress, check

_POLL_S = 0.05  # how often a waiting parent checks for cancellation


def child_command(module: str, job: Path) -> list[str]:
    """The child's command line.  It runs in the job folder (nothing of the user's current
    folder can shadow the package) and, from Python 3.11, with ``-P`` (no script or current
    folder prepended to ``sys.path``): it imports the same installed ``squeezelens`` as the parent."""
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *safe_path, "-m", module, str(job)]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line.rstrip("\n"))
    out.put(None)  # end of output


def follow(proc: subprocess.Popen, progress: Progress | None, cancel: CancelToken | None) -> str:
    """Relay the child's progress until it exits; returns its last ``error`` line ('' if none).

    Raises Cancelled (after killing the child) as soon as ``cancel`` is set.
    """
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    error = ""
    while True:
        check(cancel)
        try:
            line = lines.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        if line is None:
            return error
        kind, _, rest = line.partition(" ")
        if kind == "progress" and progress is not None:
            done, total = (int(v) for v in rest.split())
            progress(done, total)
        elif kind == "error":
            error = rest


def run_child(module: str, job: Path, result: str, what: str,
              progress: Progress | None, cancel: CancelToken | None) -> Path:  # fmt: skip
    """Run ``module`` on the prepared ``job`` folder; the path of its ``result`` file.

    cancel: polled every 50 ms, kills the child and raises Cancelled.  InputError
    "``what`` failed (the child's message)" when it fails."""
    with open(job / "stderr.txt", "w") as err:
        proc = subprocess.Popen(child_command(module, job), stdout=subprocess.PIPE, stderr=err,
                                text=True, env=child_env(), cwd=job)  # fmt: skip
    try:
        error = follow(proc, progress, cancel)
        rc = proc.wait()
    finally:  # cancelled (or failed here): the child must not outlive the job
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0 or not (job / result).exists():
        tail = (job / "stderr.txt").read_text(errors="replace").strip().splitlines()[-1:]
        why = error or (tail[0] if tail else f"exit code {rc}")
        raise InputError(f"{what} failed ({why})")
    return job / result


def child_main(run_job: Callable[[Path], None], argv: list[str] | None = None) -> int:
    """A child's entry point: run the job in ``argv[0]``; 0 on success, 2 on bad input."""
    args = sys.argv[1:] if argv is None else argv
    try:
        run_job(Path(args[0]))
    except InputError as exc:
        print(f"error {exc}", flush=True)
        return 2
    return 0


def write_model_job(job: Path, detector, meta: dict) -> None:
    """Hand the child the model (``weights.npz`` with its sidecar) and ``job.json``: ``meta``
    with the architecture (``spec``) the child must rebuild."""
    import json

    from squeezelens.engine.checkpoint.writers import save_npz

    save_npz(job / "weights.npz", detector.float_weights, detector.spec)
    (job / "job.json").write_text(json.dumps({**meta, "spec": detector.spec.to_dict()}))


def read_model_job(job: Path):
    """In the child: (the Detector rebuilt from the job, the job's meta)."""
    import json

    from squeezelens.engine.detector import Detector

    meta = json.loads((job / "job.json").read_text())
    detector = Detector.from_checkpoint(job / "weights.npz")
    if detector.spec.to_dict() != meta["spec"]:
        raise InputError("the child rebuilt a different architecture", job / "weights.npz")
    return detector, meta
