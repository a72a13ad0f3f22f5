"""`discrete-diff`: one entry point; each subcommand lives in `discrete_diff.commands.<name>`.

User errors (bad files, options, values) print one line and exit with status 2; training that stops itself (a
non-finite loss) prints one line and exits with status 1; anything else is a bug and shows its traceback. Set
DISCRETE_DIFF_DEBUG=1 to see the traceback of a user error too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from jsonargparse import ArgumentError

from .commands import data, evaluate, evaluate_proteins, export, infill, quickstart, sample, train
from .commands.sampling_options import FLAGS
from .errors import InvalidArgument, TrainingStopped, UserInputError

COMMANDS = (train, quickstart, data, sample, infill, evaluate, evaluate_proteins, export)
"""Each module has NAME, HELP, configure(parser) and run(args) -> int; optional ALIASES; PASSTHROUGH = True
hands every argument the subcommand does not declare to the command itself (as `args.passthrough`)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage over several lines
        raise UserInputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="discrete-diff", description="Masked discrete diffusion for text and proteins.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        # `train` hands even --help to LightningCLI; other commands describe their own options.
        own_help = command is not train
        sub = subparsers.add_parser(
            command.NAME,
            aliases=getattr(command, "ALIASES", ()),
            help=command.HELP,
            description=command.HELP,
            add_help=own_help,
        )
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


def _message(error: BaseException) -> str:
    """One line; a library argument's error is reported under the flag that set it."""
    error = _innermost_user_error(error)
    if isinstance(error, InvalidArgument):
        flag = FLAGS.get(error.argument, f"--{error.argument.replace('_', '-')}")
        return f"{flag} {error.problem}"
    return " ".join(str(error).split()) or type(error).__name__


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
    except (UserInputError, ArgumentError) as error:
        if os.environ.get("DISCRETE_DIFF_DEBUG"):
            raise
        print(f"discrete-diff: error: {_message(error)}", file=sys.stderr)
        return 2
    except TrainingStopped as stopped:
        if os.environ.get("DISCRETE_DIFF_DEBUG"):
            raise
        print(f"discrete-diff: training stopped: {stopped}", file=sys.stderr)
        return 1


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
