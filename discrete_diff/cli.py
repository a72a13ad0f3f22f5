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

from .commands import (
    data,
    distill,
    eval,
    evaluate_proteins,
    export,
    infill,
    noise_window,
    quickstart,
    sample,
    serve,
    train,
)
from .commands.messages import user_message
from .errors import TrainingStopped, UserInputError

COMMANDS = (train, distill, quickstart, data, sample, infill, eval, evaluate_proteins, noise_window, export, serve)
"""Each module has NAME, HELP, configure(parser) and run(args) -> int; optional ALIASES; PASSTHROUGH = True
hands every argument the subcommand does not declare to the command itself (as `args.passthrough`);
LIGHTNING_HELP = True leaves even --help to LightningCLI (train, distill)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage over several lines
        raise UserInputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="discrete-diff", description="Masked discrete diffusion for text and proteins.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        own_help = not getattr(command, "LIGHTNING_HELP", False)
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
        print(f"discrete-diff: error: {user_message(error)}", file=sys.stderr)
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
