"""INT8 conversion in a child process.

Why: the Keras export and the TFLite converter build and trace TensorFlow graphs
for seconds; in a process whose other threads run Python (a desktop tool's UI
thread), that is unsafe: a garbage collection on the UI thread during the
export's tracing crashed the whole process (a segmentation fault).  A child
owns its TensorFlow runtime, so nothing of the parent's meets the converter; it
also keeps the converter's Python-heavy tracing off the parent's interpreter
lock (the UI stays smooth), and cancelling kills it at once.

Protocol (``python -m squeezelens.engine.int8.isolated JOB_DIR``): ``JOB_DIR`` holds
``weights.npz`` with its sidecar (the float weights and architecture),
``calib.npz`` (``arr_0`` ... the calibration images, BGR (H, W, 3)) and
``job.json`` (``spec``: the parent's ``ArchSpec.to_dict()``, ``options``).  The
child prints ``progress DONE TOTAL`` lines, writes ``model.tflite`` and exits 0;
a bad input prints ``error MESSAGE`` and exits 2.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import write_bytes_atomic
from squeezelens.engine.errors import InputError
from squeezelens.engine.int8.convert import DEFAULT_OPTIONS, ConvertOptions
from squeezelens.engine.jobs import CancelToken, Progress, check

_POLL_S = 0.05  # how often a waiting parent checks for cancellation


def _write_job(job: Path, detector, images: Sequence[np.ndarray], options: ConvertOptions) -> None:
    from squeezelens.engine.checkpoint.writers import save_npz

    save_npz(job / "weights.npz", detector.float_weights, detector.spec)
    np.savez(job / "calib.npz", *[np.ascontiguousarray(im) for im in images])
    meta = {"spec": detector.spec.to_dict(), "options": asdict(options)}
    (job / "job.json").write_text(json.dumps(meta))


def _child_command(job: Path) -> list[str]:
    """The child's command line.  It runs in the job folder (nothing of the user's current
    folder can shadow the package) and, from Python 3.11, with ``-P`` (no script or current
    folder prepended to ``sys.path``): it imports the same installed ``squeezelens`` as the parent."""
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *safe_path, "-m", "squeezelens.engine.int8.isolated", str(job)]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line.rstrip("\n"))
    out.put(None)  # end of output


def _follow(proc: subprocess.Popen, progress: Progress | None, cancel: CancelToken | None) -> str:
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


def convert_int8_isolated(
    detector,
    images: Sequence[np.ndarray],
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    options: ConvertOptions = DEFAULT_OPTIONS,
) -> bytes:
    """Like :func:`engine.int8.convert.convert_int8`, run in a child Python process.

    images: validated BGR (H, W, 3) arrays.  progress(done, total) as the child reports it;
    cancel: polled every 50 ms, kills the child and raises Cancelled.
    Raises InputError with the child's message when it fails.
    """
    with tempfile.TemporaryDirectory(prefix="squeezelens-int8-job-") as tmp:
        job = Path(tmp)
        _write_job(job, detector, images, options)
        with open(job / "stderr.txt", "w") as err:
            proc = subprocess.Popen(_child_command(job), stdout=subprocess.PIPE, stderr=err,
                                    text=True, env=_child_env(), cwd=job)  # fmt: skip
        try:
            error = _follow(proc, progress, cancel)
            rc = proc.wait()
        finally:  # cancelled (or failed here): the child must not outlive the job
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if rc != 0 or not (job / "model.tflite").exists():
            tail = (job / "stderr.txt").read_text(errors="replace").strip().splitlines()[-1:]
            why = error or (tail[0] if tail else f"exit code {rc}")
            raise InputError(f"INT8 conversion failed ({why})")
        return (job / "model.tflite").read_bytes()


def _run_job(job: Path) -> None:
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.int8.convert import convert_int8

    meta = json.loads((job / "job.json").read_text())
    detector = Detector.from_checkpoint(job / "weights.npz")
    if detector.spec.to_dict() != meta["spec"]:
        raise InputError("the child rebuilt a different architecture", job / "weights.npz")
    with np.load(job / "calib.npz") as z:
        images = [z[f"arr_{i}"] for i in range(len(z.files))]

    def report(done: int, total: int) -> None:
        print(f"progress {done} {total}", flush=True)

    data = convert_int8(detector, images, report, None, ConvertOptions(**meta["options"]))
    write_bytes_atomic(job / "model.tflite", data)


def main(argv: list[str] | None = None) -> int:
    """Child entry point: convert the job in ``argv[0]``; 0 on success, 2 on bad input."""
    args = sys.argv[1:] if argv is None else argv
    try:
        _run_job(Path(args[0]))
    except InputError as exc:
        print(f"error {exc}", flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
