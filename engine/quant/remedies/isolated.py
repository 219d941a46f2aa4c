"""The remedies that need calibration images (bias correction, AdaRound) in a child process.

Why: AdaRound's optimisation is numpy driven from Python, so between its array
operations it holds the interpreter lock.  In a desktop tool's process the UI
thread then waits whenever the worker is descheduled while holding it (gaps of
100-200 ms on a loaded 2-core machine, benchmarks/bench_gui_remedies.py).  A child
has its own lock, and cancelling kills it at once.  The result is exactly the
in-process one (the same calibration inputs, the same code); the parent files it
in its own cache (:func:`engine.quant.remedies.cache.store`).

Protocol (``python -m squeezelens.engine.quant.remedies.isolated JOB_DIR``): ``JOB_DIR``
holds ``weights.npz`` with its sidecar (the float weights and architecture),
``calib.npz`` (``inputs``: the preprocessed calibration inputs) and ``job.json``
(``config``, ``spec``, ``calibration_key``).  The child prints ``progress DONE TOTAL``
lines, writes ``remedied.npz`` (every kernel and bias) and exits 0; a bad input prints
``error MESSAGE`` and exits 2 (:mod:`engine.child_jobs`).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from squeezelens.engine.child_jobs import child_main, read_model_job, run_child, write_model_job
from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, Progress
from squeezelens.engine.quant.config import QuantConfig

RESULT = "remedied.npz"


def _params(weights) -> dict[str, np.ndarray]:
    return {k: v for k, v in weights.items() if k.endswith(("kernels", "biases"))}


def _write_job(job: Path, detector, config: QuantConfig) -> None:
    calibration = detector.calibration
    np.savez(job / "calib.npz", inputs=np.ascontiguousarray(calibration.inputs))
    write_model_job(job, detector, {"config": config.to_dict(), "calibration_key": calibration.key})


def remedied_params_isolated(
    detector,
    config: QuantConfig,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, np.ndarray]:
    """The kernels and biases of ``detector`` under ``config`` (remedies on
    ``detector.calibration``), computed in a child Python process.

    progress(done, total) as the child reports it; cancel: polled every 50 ms, kills the
    child and raises Cancelled.  InputError with the child's message when it fails."""
    if config.needs_calibration and getattr(detector, "calibration", None) is None:
        raise InputError("bias correction and AdaRound need calibration images")
    with tempfile.TemporaryDirectory(prefix="squeezelens-remedies-job-") as tmp:
        job = Path(tmp)
        _write_job(job, detector, config)
        with np.load(run_child(__name__, job, RESULT, "remedies", progress, cancel)) as z:
            return {name: np.array(z[name]) for name in z.files}


def _run_job(job: Path) -> None:
    from squeezelens.engine.calibration import CalibrationInputs
    from squeezelens.engine.quant.remedies.cache import detector_weights

    detector, meta = read_model_job(job)
    with np.load(job / "calib.npz") as z:
        detector.calibration = CalibrationInputs(np.array(z["inputs"]), meta["calibration_key"])

    def report(done: int, total: int) -> None:
        print(f"progress {done} {total}", flush=True)

    config = QuantConfig.from_dict(meta["config"])
    weights = detector_weights(detector, config, report, None, cache_dir=job / "cache")
    np.savez(job / RESULT, **_params(weights))


def main(argv: list[str] | None = None) -> int:
    """Child entry point: compute the job in ``argv[0]``; 0 on success, 2 on bad input."""
    return child_main(_run_job, argv)


if __name__ == "__main__":
    sys.exit(main())
