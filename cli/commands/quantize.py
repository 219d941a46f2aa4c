"""``squeezelens quantize``: write a checkpoint's quantized parameters and their grids.

FILE.npz holds float32 values on the grid, keyed by the official tensor names
(kernels HWIO), loadable as a checkpoint; FILE.json records per tensor (or per
channel) min, max, step, number of levels and the zero index or fractional
length, plus provenance (checkpoint hash, config, seed, versions).
"""

from __future__ import annotations

from pathlib import Path

from cli.common import add_model_arguments, load_detector, write_json
from engine.errors import InputError


def register(sub) -> None:
    from engine.quant.cli_args import add_quant_arguments

    p = sub.add_parser(
        "quantize",
        help="write quantized parameters (.npz) and their grids (.json)",
        description=__doc__,
    )
    add_model_arguments(p)
    add_quant_arguments(p)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE.npz",
        help="output .npz (a .json is written beside it)",
    )
    p.set_defaults(func=run)


def quantize_document(detector, quant) -> tuple[dict, dict]:
    """(quantized weights, the JSON document describing their grids and provenance)."""
    from engine.provenance import checkpoint_record, versions
    from engine.quant import quantization_report, quantize_weights

    weights = quantize_weights(detector.float_weights, quant)
    report = quantization_report(detector.float_weights, quant)
    doc = {
        **detector.spec.to_dict(),  # doubles as the checkpoint sidecar: FILE.npz loads as a model
        "checkpoint": checkpoint_record(detector),
        "quant": quant.to_dict(),
        "seed": quant.seed,
        "versions": versions(),
        "tensors": {name: info.to_dict() for name, info in report.items()},
    }
    return weights, doc


def run(args) -> int:
    from engine.checkpoint import save_npz
    from engine.quant.cli_args import quant_config_from_args

    if args.out.suffix != ".npz":
        raise InputError("--out must end in .npz", args.out)
    quant = quant_config_from_args(args)  # validate before the slow model load
    detector = load_detector(args)
    weights, doc = quantize_document(detector, quant)
    save_npz(args.out, weights)
    write_json(args.out.with_suffix(".json"), doc)
    n = sum(1 for info in doc["tensors"].values() if info["quantized"])
    print(
        f"wrote {args.out} ({n} of {len(weights)} tensors quantized: {quant.describe()}) and {args.out.with_suffix('.json')}"
    )
    return 0
