"""``squeezelens train``: train SqueezeDet on a KITTI folder (resumable; rerun to continue)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from squeezelens.cli.common import parse_size, resolve_kitti_root, say
from squeezelens.cli.outputs import add_wait_argument, locked_out_folder


def add_run_arguments(
    p, steps: int, lr: float, checkpoint_every: int, seed_flag: str = "--seed", bf16: bool = False
) -> None:
    """Flags shared by train and finetune (schedule, batch, logging, data).

    seed_flag: finetune's ``--seed`` is the quantizer's, so its data seed is ``--data-seed``.
    bf16: offer ``--bf16`` (train only: fine-tuning must run on the exact grid values).
    """
    p.add_argument(
        "--kitti-root", metavar="ROOT", help="KITTI object folder (default: bundled sample data)"
    )
    p.add_argument("--split", default="train", help="train, val, trainval or all (default train)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="run folder: model.npz, checkpoints/, train.state, loss_log.csv")  # fmt: skip
    p.add_argument(
        "--steps", type=int, default=steps, metavar="N", help=f"total updates (default {steps})"
    )
    p.add_argument(
        "--batch", type=int, default=20, metavar="B", help="images per step (default 20)"
    )
    p.add_argument("--lr", type=float, default=lr, help=f"initial learning rate (default {lr})")
    p.add_argument("--decay-steps", type=int, default=10000, metavar="N",
                   help="halve the learning rate every N steps (default 10000)")  # fmt: skip
    p.add_argument("--checkpoint-every", type=int, default=checkpoint_every, metavar="N",
                   help=f"save a checkpoint every N steps (default {checkpoint_every})")  # fmt: skip
    p.add_argument(
        "--log-every",
        type=int,
        default=10,
        metavar="N",
        help="loss log row every N steps (default 10)",
    )
    p.add_argument(seed_flag, dest="train_seed", type=int, default=0, metavar="S",
                   help="seed of sample order, augmentation and init (default 0)")  # fmt: skip
    p.add_argument("--no-augment", action="store_true", help="no drift/flip augmentation")
    p.add_argument("--deterministic", action="store_true",
                   help="bit-identical runs on a GPU too (TensorFlow op determinism); on a CPU, "
                        "runs with the same seed are bit-identical without it")  # fmt: skip
    if bf16:
        p.add_argument("--bf16", action="store_true",
                       help="mixed precision: convolutions in bfloat16, weights and loss in "
                            "float32 (about 1.7x faster on CPUs with AVX512-BF16)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_wait_argument(p)


def register(sub) -> None:
    p = sub.add_parser("train", help="train SqueezeDet on KITTI", description=__doc__)
    p.add_argument(
        "--init",
        metavar="CKPT",
        help="start from this checkpoint (conv12 redrawn if classes differ)",
    )
    p.add_argument("--input-size", type=parse_size, metavar="WxH",
                   help="network input size, anchors scaled (default 1248x384, or the --init's)")  # fmt: skip
    p.add_argument("--variant", choices=("squeezedet", "squeezedet+"), default=None,
                   help="architecture of a new model (default squeezedet)")  # fmt: skip
    add_run_arguments(p, steps=1000, lr=0.01, checkpoint_every=1000, bf16=True)
    p.set_defaults(func=run)


def train_config(args):
    """The TrainConfig described by the shared flags."""
    from squeezelens.engine.train.augment import AugmentConfig
    from squeezelens.engine.train.loop import TrainConfig

    return TrainConfig(
        steps=args.steps, batch=args.batch, learning_rate=args.lr, decay_steps=args.decay_steps,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, seed=args.train_seed,
        split=args.split, augmentation=None if args.no_augment else AugmentConfig(),
        precision="bfloat16" if getattr(args, "bf16", False) else "float32",
        deterministic=args.deterministic,
    )  # fmt: skip


def run_training(command: str, start: Callable[[], Any]) -> int:
    """Run ``start()`` (the engine's train or finetune call) and say in one line how the run
    ended; 1 when it diverged."""
    from squeezelens.engine.train import TrainingDiverged

    try:
        result = start()
    except TrainingDiverged as exc:
        say(f"squeezelens {command}: {exc}")
        return 1
    if result.step == result.resumed_from:
        say(f"nothing to do: the run already reached step {result.step}")
    else:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
        say(f"step {result.step}: {losses}; checkpoint {result.checkpoint}; log {result.log}")
    return 0


@locked_out_folder
def run(args) -> int:
    from squeezelens.engine.errors import InputError
    from squeezelens.engine.model.spec import ArchSpec
    from squeezelens.engine.train import train

    config = train_config(args)
    if args.variant and args.init:
        raise InputError("--variant is for new models; --init brings its own architecture")
    spec = ArchSpec(variant=args.variant) if args.variant else None
    return run_training("train", lambda: train(
        resolve_kitti_root(args), args.out, init=args.init, spec=spec,
        input_size=args.input_size, config=config, progress=not args.no_progress, say=say,
    ))  # fmt: skip
