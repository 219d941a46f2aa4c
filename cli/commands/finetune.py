"""``squeezelens finetune``: quantization-aware fine-tuning of a checkpoint (Ristretto style).

Forward and backward run on weights quantized with the given settings
(stochastic rounding unless --rounding says otherwise); the updates go to float
copies, which the run's checkpoints hold.  Rerun the same command to continue.
"""

from __future__ import annotations

from squeezelens.cli.commands.train import add_run_arguments, run_training, train_config
from squeezelens.cli.common import parse_size, resolve_checkpoint, resolve_kitti_root, say
from squeezelens.cli.hijacks import warn_range_hijacks
from squeezelens.cli.outputs import locked_out_folder


def register(sub) -> None:
    from squeezelens.cli.quant_args import add_config_arguments

    p = sub.add_parser(
        "finetune", help="quantization-aware fine-tuning on KITTI", description=__doc__
    )
    p.add_argument("--checkpoint", metavar="CKPT",
                   help="checkpoint to fine-tune (default: the bundled sample model)")  # fmt: skip
    p.add_argument(
        "--input-size", type=parse_size, metavar="WxH", help="override the network input size"
    )
    add_run_arguments(p, steps=1000, lr=0.001, checkpoint_every=500, seed_flag="--data-seed")
    add_config_arguments(p)
    for action in p._actions:  # the shared help names the other commands' default
        if action.dest == "quant_rounding":
            action.help = (
                "nearest | stochastic (default stochastic: Ristretto's shadow-weight rule)"
            )
    p.set_defaults(func=run)


@locked_out_folder
def run(args) -> int:
    from squeezelens.cli.quant_args import quant_config_from_args
    from squeezelens.engine.train import finetune

    if args.quant_rounding is None:
        args.quant_rounding = "stochastic"
    from squeezelens.engine.checkpoint import load_checkpoint

    quant = quant_config_from_args(args)
    config = train_config(args)
    checkpoint = resolve_checkpoint(args)
    warn_range_hijacks(load_checkpoint(checkpoint, input_size=args.input_size).weights, [quant])
    return run_training("finetune", lambda: finetune(
        checkpoint, resolve_kitti_root(args), args.out, quant,
        input_size=args.input_size, config=config, progress=not args.no_progress, say=say,
    ))  # fmt: skip
