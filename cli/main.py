"""Entry point of the ``squeezelens`` command.

Each subcommand lives in its own module under ``cli/commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
callable ``(args) -> int``.  Bad input raised as :class:`engine.errors.InputError`
becomes a one-line message on stderr and exit code 2; ``--verbose`` adds the
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from engine.errors import InputError

COMMANDS = (
    "detect",
    "evaluate",
    "quantize",
    "sweep",
    "export",
    "sample_data",
    "train",
    "finetune",
    "gui",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squeezelens",
        description="Inspect what low-precision quantization does to a SqueezeDet detector.",
    )
    parser.add_argument("--verbose", action="store_true", help="print full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"cli.commands.{name}")
        except ModuleNotFoundError as exc:  # a command not built yet
            if exc.name == f"cli.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"squeezelens {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"squeezelens {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
