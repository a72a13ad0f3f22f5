"""`discrete-diff`: one entry point; each subcommand lives in `discrete_diff.commands.<name>`.

User errors (bad files, options, values) print one line and exit with status 2; set DISCRETE_DIFF_DEBUG=1
to see the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from jsonargparse import ArgumentError

from .commands import data, evaluate, evaluate_proteins, export, generate, infill, quickstart, sample, serve, train
from .errors import UserInputError

COMMANDS = (train, data, sample, evaluate, quickstart, generate, evaluate_proteins, export, infill, serve)
"""Each module has NAME, HELP, configure(parser) and run(args) -> int; PASSTHROUGH = True hands every
argument after the subcommand to the command itself (as `args.passthrough`)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage over several lines
        raise UserInputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="discrete-diff", description="Masked discrete diffusion for text and proteins.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        passthrough = getattr(command, "PASSTHROUGH", False)
        sub = subparsers.add_parser(command.NAME, help=command.HELP, description=command.HELP, add_help=not passthrough)
        command.configure(sub)
        sub.set_defaults(handler=command.run)
    return parser


def _innermost_user_error(error: BaseException) -> BaseException:
    """Config parsers wrap the errors our constructors raise; report the original, not the wrapping."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UserInputError):
            return current
        current = current.__cause__ or current.__context__
    return error


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if getattr(args, "passthrough", None) is not None:
            args.passthrough = extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return int(args.handler(args) or 0)
    except (UserInputError, ArgumentError, ValueError) as error:
        if os.environ.get("DISCRETE_DIFF_DEBUG"):
            raise
        message = " ".join(str(_innermost_user_error(error)).split()) or type(error).__name__
        print(f"discrete-diff: error: {message}", file=sys.stderr)
        return 2


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
