"""``squeezelens adaround``: learn the rounding of every weight (AdaRound) and write it.

AdaRound (Nagel et al. 2020) rounds each weight up or down on its grid (any --bits,
--scale, --grid, --range, zero reservation; --layer-bits too), learned layer by
layer on the calibration images (--calib, else the train split of --kitti-root,
else the bundled sample data; never the evaluated split), with the inputs the
already rounded earlier layers produce.  --adaround-iterations steps per layer
(default 1000).  --equalize and --bias-correction compose with it.

FILE.npz holds the rounded weights keyed by the official tensor names, loadable
as a checkpoint (and by ``export --int8``); FILE.json is its sidecar: the
architecture, the config, the calibration set, the grids and the versions.  The
result is cached (per checkpoint, config and calibration set), so evaluate, detect,
sweep and the desktop tool with the same flags reuse it at once.  Ctrl-C stops it.
"""

from __future__ import annotations

from squeezelens.cli.commands.quantize import add_output_arguments
from squeezelens.engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "adaround",
        help="learn the up/down rounding of every weight on calibration images (AdaRound)",
        description=__doc__,
    )
    add_output_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelens.cli.commands.quantize import write
    from squeezelens.cli.quant_args import quant_config_from_args

    if args.int8:
        raise InputError(
            "adaround writes weights; export --int8 --checkpoint FILE.npz converts them"
        )
    if args.quant_rounding not in (None, "adaround"):
        raise InputError(f"adaround rounds by AdaRound: drop --rounding {args.quant_rounding}")
    args.quant_rounding = "adaround"
    quant = quant_config_from_args(args)  # validate before the slow model load
    return write(args, quant, "AdaRound")
