"""``squeezelens evaluate``: KITTI AP of a checkpoint (float, quantized or INT8) on a split."""

from __future__ import annotations

from pathlib import Path

from squeezelens.cli.common import (
    add_model_arguments,
    add_quant_arguments,
    add_scoring_arguments,
    load_detector,
    resolve_kitti_root,
)
from squeezelens.cli.distributed import ParallelJob, add_parallel_arguments, parallel_spec
from squeezelens.cli.error_report import (
    add_error_arguments,
    check_error_flags,
    evaluate_with_errors,
    write_error_files,
)
from squeezelens.cli.outputs import check_out_folder
from squeezelens.cli.progress import ProgressBar
from squeezelens.cli.runner import (
    BoundDetector,
    build_runner,
    calibration_used,
    check_quant_flags,
)
from squeezelens.engine.atomic import write_json_atomic


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score a checkpoint with the KITTI protocol", description=__doc__
    )
    add_model_arguments(p)
    add_scoring_arguments(p, split_help="train, val, trainval or all (default val)")
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write results.json, pr_curves.csv and data/<stem>.txt (KITTI result files in "
        "the protocol's writer format: squeezedet rounds boxes to 2 and scores to 3 decimals)",
    )
    add_quant_arguments(p)
    add_error_arguments(p)
    add_parallel_arguments(p)
    p.set_defaults(func=run)


def _unbound(runner) -> tuple[object, object]:
    """(detector, quant config): a bound runner is unwrapped, so that evaluation can
    preprocess in its prefetch thread (the detector's preprocess/forward/decode)."""
    if isinstance(runner, BoundDetector):
        return runner.detector, runner.quant
    return runner, None


def results_document(args, result, detector, quant, split: str) -> dict:
    from squeezelens.engine.provenance import checkpoint_record, versions

    doc = {
        "protocol": args.protocol,
        "split": split,
        "checkpoint": checkpoint_record(detector),
        "quant": None if quant is None else quant.to_dict(),
        "int8": bool(getattr(args, "int8", False)),
        "calibration": calibration_used(detector),
        "versions": versions(),
    }
    doc.update(result.to_json_dict())
    return doc


def run(args) -> int:
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.eval.kitti_io import write_kitti_detections
    from squeezelens.engine.evaluate import evaluate

    if args.out is not None:
        check_out_folder(args.out)
        check_out_folder(args.out / "data")
    spec = parallel_spec(args)  # --workers / --ray: checked before the slow work
    root = resolve_kitti_root(args)
    dataset = open_dataset(root, args.split)
    check_quant_flags(args)  # bad flags fail before the slow model load
    check_error_flags(args)
    detector = load_detector(args)
    runner, quant, description = build_runner(args, detector)
    on_image = None
    if args.out is not None:

        def on_image(record, dets):  # the protocol's own writer: what its devkit reads
            write_kitti_detections(args.out / "data", {record.stem: dets}, protocol=args.protocol)

    label = f"evaluating {len(dataset)} images ({description})"
    model, model_quant = _unbound(runner)
    out = args.out
    par = spec and ParallelJob(
        spec, model, label, out and out / "tasks", out and out / "cluster.json"
    )
    errors = None
    if args.errors:
        errors = evaluate_with_errors(args, detector, model, model_quant, dataset,
                                      ProgressBar(label, unit="img"), on_image)  # fmt: skip
        result = errors.result
    elif par:
        result = par.evaluate(dataset, model_quant, args.protocol, on_image)
    else:
        result = evaluate(model, dataset, model_quant, protocol=args.protocol,
                          progress=ProgressBar(label, unit="img"), on_image=on_image)  # fmt: skip
    print(result.format_table())
    if errors is not None:
        print(errors.format())
    if args.out is not None:
        _write_outputs(args, results_document(args, result, detector, quant, dataset.split),
                       result, errors)  # fmt: skip
    if par:
        par.finish()
    return 0


def _write_outputs(args, doc: dict, result, errors) -> None:
    """results.json (with the errors section under --errors), pr_curves.csv, errors.csv."""
    if errors is not None:
        doc["errors"] = errors.to_json_dict()
        write_error_files(args.out, errors)
    write_json_atomic(args.out / "results.json", doc)
    result.write_pr_csv(args.out / "pr_curves.csv")
    extra = ", errors.csv" if errors is not None else ""
    print(f"wrote {args.out / 'results.json'}, pr_curves.csv{extra} and data/")
