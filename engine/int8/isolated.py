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
a bad input prints ``error MESSAGE`` and exits 2 (:mod:`engine.child_jobs`).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import write_bytes_atomic
from squeezelens.engine.child_jobs import child_main, read_model_job, run_child, write_model_job
from squeezelens.engine.int8.convert import DEFAULT_OPTIONS, ConvertOptions
from squeezelens.engine.jobs import CancelToken, Progress


def _write_job(job: Path, detector, images: Sequence[np.ndarray], options: ConvertOptions) -> None:
    np.savez(job / "calib.npz", *[np.ascontiguousarray(im) for im in images])
    write_model_job(job, detector, {"options": asdict(options)})


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
        result = run_child(__name__, job, "model.tflite", "INT8 conversion", progress, cancel)
        return result.read_bytes()


def _run_job(job: Path) -> None:
    from squeezelens.engine.int8.convert import convert_int8

    detector, meta = read_model_job(job)
    with np.load(job / "calib.npz") as z:
        images = [z[f"arr_{i}"] for i in range(len(z.files))]

    def report(done: int, total: int) -> None:
        print(f"progress {done} {total}", flush=True)

    data = convert_int8(detector, images, report, None, ConvertOptions(**meta["options"]))
    write_bytes_atomic(job / "model.tflite", data)


def main(argv: list[str] | None = None) -> int:
    """Child entry point: convert the job in ``argv[0]``; 0 on success, 2 on bad input."""
    return child_main(_run_job, argv)


if __name__ == "__main__":
    sys.exit(main())
