"""Entry point of the ``squeezelens`` command.

Each subcommand lives in its own module under ``cli/commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
callable ``(args) -> int``.  Bad input raised as :class:`engine.errors.InputError`,
and any ``OSError`` (a file where a folder should be, a full disk, a folder
without write permission), becomes a one-line message on stderr that names the
path, and exit code 2; ``--verbose`` (before or after the subcommand) adds the
traceback and shows TensorFlow's log chatter, which is otherwise filtered out
(:mod:`squeezelens.engine.tf_quiet`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from squeezelens.engine.errors import InputError

COMMANDS = (
    "detect",
    "evaluate",
    "quantize",
    "adaround",
    "sweep",
    "search",
    "sensitivity",
    "export",
    "compare_int8",
    "sample_data",
    "train",
    "finetune",
    "average",
    "gui",
)


VERBOSE_HELP = "print full tracebacks on errors, and TensorFlow's log output"
# the desktop tool's stdout and stderr stay unfiltered: a crash report must reach the
# terminal even when the process dies while printing it
UNFILTERED = ("gui",)


def _add_verbose(parser: argparse.ArgumentParser, default: object) -> None:
    """``--verbose`` on a parser; subparsers use SUPPRESS so they never reset the main flag."""
    if "--verbose" not in parser._option_string_actions:
        parser.add_argument("--verbose", action="store_true", default=default, help=VERBOSE_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squeezelens",
        description="Inspect what low-precision quantization does to a SqueezeDet detector.",
    )
    _add_verbose(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"squeezelens.cli.commands.{name}")
        except ModuleNotFoundError as exc:  # a command not built yet
            if exc.name == f"squeezelens.cli.commands.{name}":
                continue
            raise
        module.register(sub)
    for subparser in {id(p): p for p in sub.choices.values()}.values():
        _add_verbose(subparser, argparse.SUPPRESS)
    return parser


def os_error_message(exc: OSError) -> str:
    """One line for an OSError: ``<path>: <problem>`` (both paths for a failed rename)."""
    problem = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    text = f"{' -> '.join(paths)}: {problem}" if paths else problem
    return text.replace("\n", " ")


def _fail(args, message: str) -> int:
    if args.verbose:
        traceback.print_exc()
    print(f"squeezelens {args.command}: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    from squeezelens.engine.tf_quiet import quiet_tensorflow

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with quiet_tensorflow(verbose=args.verbose, native=args.command not in UNFILTERED):
            return int(args.func(args) or 0)
    except InputError as exc:
        return _fail(args, str(exc))
    except OSError as exc:
        return _fail(args, os_error_message(exc))
    except KeyboardInterrupt:
        print(f"squeezelens {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
