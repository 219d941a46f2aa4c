"""``evaluate --errors``: float vs quantized detection errors, head split and twins.

The engine does the work (:func:`engine.error_eval.evaluate_errors`); this
module adds the flags, runs it for the model evaluate built, and prints and
writes its results (the ``errors`` section of results.json, errors.csv).
"""

from __future__ import annotations

from pathlib import Path


def add_error_arguments(parser) -> None:
    parser.add_argument(
        "--errors",
        action="store_true",
        help="explain the AP lost: TIDE error types (Cls, Loc, Both, Dupe, Bkg, Missed) with "
        "counts and ΔAP per class x difficulty; with quantization flags the float model runs "
        "too and the table compares both, with the ConvDet error by head and the "
        "float/quantized twin boxes (results.json 'errors', errors.csv)",
    )
    parser.add_argument(
        "--twin-threshold",
        type=float,
        default=None,
        metavar="T",
        help="score threshold of the twin statistics with --errors (default 0.4, the "
        "desktop tool's display threshold)",
    )


def check_error_flags(args) -> None:
    """One-line errors for bad --errors flags, before the model loads."""
    from squeezelens.engine.errors import InputError

    if args.twin_threshold is not None:
        if not args.errors:
            raise InputError("--twin-threshold is only used with --errors")
        if not 0.0 <= args.twin_threshold <= 1.0:
            raise InputError(f"--twin-threshold must be in [0, 1], got {args.twin_threshold}")
    if args.errors and (getattr(args, "workers", None) or getattr(args, "ray", None)):
        raise InputError(
            "--errors runs in one process (it needs each image's float and quantized raw outputs "
            "together): drop --workers / --ray"
        )


def evaluate_with_errors(args, detector, model, model_quant, dataset, progress, on_image):
    """Run :func:`engine.error_eval.evaluate_errors` for the model evaluate built
    (``model`` is the float ``detector`` itself when no quantization flag was given)."""
    from squeezelens.engine.error_eval import TWIN_THRESHOLD, evaluate_errors

    compared = model is not detector or model_quant is not None
    threshold = TWIN_THRESHOLD if args.twin_threshold is None else args.twin_threshold
    return evaluate_errors(
        detector,
        dataset,
        model if compared else None,
        model_quant,
        protocol=args.protocol,
        twin_threshold=threshold,
        progress=progress,
        on_image=on_image,
    )


def write_error_files(out: Path, evaluation) -> Path:
    from squeezelens.engine.eval.errors import write_errors_csv

    return write_errors_csv(out / "errors.csv", evaluation.analyses)
