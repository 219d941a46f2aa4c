"""``squeezelens sensitivity``: the mAP each layer costs when it alone is quantized.

Ristretto's per-layer bit-width analysis, detection-aware: for every layer the
config quantizes and every tested bit width, only that layer is rounded (onto
the grid the full config gives it; the other layers stay float) and the split
is scored.  Prints a table of mAP drops (mean of the 9 APs, R11) and the
recommended mixed precision: per layer the fewest bits whose drop is within
--tolerance, 'float' when none is, as a --layer-bits value for detect,
evaluate, quantize and sweep.  --out FILE.json keeps the result and its
provenance (the GUI's Layers tab runs the same analysis).

Cost: (layers x bit widths + 1) passes over the split; use a small split.
"""

from __future__ import annotations

from pathlib import Path

from squeezelens.cli.common import (
    add_model_arguments,
    add_quant_arguments,
    add_scoring_arguments,
    calibration_source,
    load_detector,
    resolve_kitti_root,
    say,
)
from squeezelens.cli.distributed import ParallelJob, add_parallel_arguments, parallel_spec
from squeezelens.cli.hijacks import warn_range_hijacks
from squeezelens.cli.outputs import check_out_file
from squeezelens.cli.progress import ProgressBar
from squeezelens.engine.atomic import write_json_atomic
from squeezelens.engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "sensitivity",
        help="per-layer mAP cost of quantization (mixed precision)",
        description=__doc__,
    )
    add_model_arguments(p)
    add_scoring_arguments(p)
    p.add_argument("--test-bits", metavar="N,N,...",
                   help="bit widths to test per layer (default: the config's bits and the 3 below)")  # fmt: skip
    p.add_argument("--tolerance", type=float, default=0.005, metavar="T",
                   help="largest mAP drop a layer may cost at its recommended bits (default 0.005)")  # fmt: skip
    p.add_argument("--out", type=Path, metavar="FILE.json", help="write the result as JSON")
    add_quant_arguments(p)
    add_parallel_arguments(p)
    p.set_defaults(func=run)


def _test_bits(text: str | None, config) -> tuple[int, ...]:
    from squeezelens.engine.quant.config import MAX_BITS, MIN_BITS
    from squeezelens.engine.sensitivity import sensitivity_bits

    if not text:
        return sensitivity_bits(config)
    try:
        bits = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise InputError(
            f"--test-bits must be integers separated by commas, not {text!r}"
        ) from None
    if not bits or not all(MIN_BITS <= b <= MAX_BITS for b in bits):
        raise InputError(f"--test-bits must lie in {MIN_BITS}..{MAX_BITS}, not {text!r}")
    return bits


def format_table(result, overrides: dict, config) -> str:
    """Layers as rows, tested bits as columns (mAP drop), and the recommended bits
    ("N (config)" where the config already gives the layer N bits)."""
    head = f"{'layer':<22}" + "".join(f"{b:>9} b" for b in result.bits) + "   recommended"
    lines = [f"float mAP (R11, all 9) {result.float_map:.4f}; drop when only this layer is quantized",
             head, "-" * len(head)]  # fmt: skip
    for layer in result.layers:
        drops = "".join(f"{result.drop(layer, b):>+11.4f}" for b in result.bits)
        keep = f"{config.layer_bits(layer)} (config)"
        lines.append(f"{layer:<22}{drops}   {overrides.get(layer, keep)}")
    return "\n".join(lines)


def run(args) -> int:
    from squeezelens.cli.quant_args import quant_config_from_args
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.provenance import checkpoint_record, versions
    from squeezelens.engine.sensitivity import layer_sensitivity, recommend_overrides

    if args.out:
        check_out_file(args.out)
    config = quant_config_from_args(args)
    if args.int8 or config.activation_bits:
        raise InputError(
            "sensitivity tests weight quantization only: drop --int8 / --activation-bits"
        )
    if not 0 <= args.tolerance < 1:
        raise InputError(f"--tolerance must be in [0, 1), not {args.tolerance}")
    bits = _test_bits(args.test_bits, config)
    spec = parallel_spec(args)  # --workers / --ray: checked before the slow work
    dataset = open_dataset(resolve_kitti_root(args), args.split)
    calibration = calibration_source(args).resolve() if config.needs_calibration else None
    detector = load_detector(args)
    warn_range_hijacks(detector.float_weights, [config])
    if calibration is not None:  # bias correction, AdaRound
        detector.set_calibration(calibration.images(), record=calibration.record())
    say(f"testing {len(bits)} bit widths per layer on {len(dataset)} images ({dataset.split})")
    out = args.out
    par = spec and ParallelJob(spec, detector, "sensitivity", out and out.with_suffix(".tasks"),
                               out and out.with_suffix(".cluster.json"))  # fmt: skip
    result = layer_sensitivity(detector, dataset, config, bits=bits, protocol=args.protocol,
                               progress=None if par else ProgressBar("sensitivity"),
                               detect=par and par.points(dataset, prune=False))  # fmt: skip
    overrides = recommend_overrides(result, args.tolerance)
    print(format_table(result, overrides, config))
    flag = ",".join(f"{k}={v}" for k, v in overrides.items())
    print(f"recommended: --layer-bits {flag}" if flag else "recommended: the config as it is")
    if args.out:
        doc = {**result.to_dict(), "recommended_overrides": overrides, "tolerance": args.tolerance,
               "protocol": args.protocol, "split": dataset.split,
               "checkpoint": checkpoint_record(detector), "versions": versions()}  # fmt: skip
        write_json_atomic(args.out, doc)
        say(f"wrote {args.out}")
    if par:
        par.finish()
    return 0
