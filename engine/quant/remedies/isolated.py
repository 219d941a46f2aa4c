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
``error MESSAGE`` and exits 2.  The relay is :mod:`engine.int8.isolated`'s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.int8.isolated import _child_env, _follow
from squeezelens.engine.jobs import CancelToken, Progress
from squeezelens.engine.quant.config import QuantConfig

RESULT = "remedied.npz"


def _params(weights) -> dict[str, np.ndarray]:
    return {k: v for k, v in weights.items() if k.endswith(("kernels", "biases"))}


def _write_job(job: Path, detector, config: QuantConfig) -> None:
    from squeezelens.engine.checkpoint.writers import save_npz

    calibration = detector.calibration
    save_npz(job / "weights.npz", detector.float_weights, detector.spec)
    np.savez(job / "calib.npz", inputs=np.ascontiguousarray(calibration.inputs))
    meta = {"spec": detector.spec.to_dict(), "config": config.to_dict(),
            "calibration_key": calibration.key}  # fmt: skip
    (job / "job.json").write_text(json.dumps(meta))


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
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    with tempfile.TemporaryDirectory(prefix="squeezelens-remedies-job-") as tmp:
        job = Path(tmp)
        _write_job(job, detector, config)
        command = [sys.executable, *safe_path, "-m", __name__, str(job)]
        with open(job / "stderr.txt", "w") as err:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True,
                                    env=_child_env(), cwd=job)  # fmt: skip
        try:
            error = _follow(proc, progress, cancel)
            rc = proc.wait()
        finally:  # cancelled (or failed here): the child must not outlive the job
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if rc != 0 or not (job / RESULT).exists():
            tail = (job / "stderr.txt").read_text(errors="replace").strip().splitlines()[-1:]
            raise InputError(
                f"remedies failed ({error or (tail[0] if tail else f'exit code {rc}')})"
            )
        with np.load(job / RESULT) as z:
            return {name: np.array(z[name]) for name in z.files}


def _run_job(job: Path) -> None:
    from squeezelens.engine.calibration import CalibrationInputs
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.quant.remedies.cache import detector_weights

    meta = json.loads((job / "job.json").read_text())
    detector = Detector.from_checkpoint(job / "weights.npz")
    if detector.spec.to_dict() != meta["spec"]:
        raise InputError("the child rebuilt a different architecture", job / "weights.npz")
    with np.load(job / "calib.npz") as z:
        detector.calibration = CalibrationInputs(np.array(z["inputs"]), meta["calibration_key"])

    def report(done: int, total: int) -> None:
        print(f"progress {done} {total}", flush=True)

    config = QuantConfig.from_dict(meta["config"])
    weights = detector_weights(detector, config, report, None, cache_dir=job / "cache")
    np.savez(job / RESULT, **_params(weights))


def main(argv: list[str] | None = None) -> int:
    """Child entry point: compute the job in ``argv[0]``; 0 on success, 2 on bad input."""
    args = sys.argv[1:] if argv is None else argv
    try:
        _run_job(Path(args[0]))
    except InputError as exc:
        print(f"error {exc}", flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
