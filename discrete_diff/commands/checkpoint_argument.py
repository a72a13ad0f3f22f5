"""`--checkpoint` of the commands that load a model: a .ckpt, an exported model directory, or a run's log folder
(runs/NAME/version_N), which stands for its best checkpoint by validation, named on stderr."""

from __future__ import annotations

import argparse
import sys

from ..inference.run_folders import best_checkpoint, checkpoints_folder

HELP = "a .ckpt from `discrete-diff train`, an exported model directory, or a run's log folder (its best checkpoint)"


def add_checkpoint_argument(parser: argparse.ArgumentParser, required: bool = True, help: str = HELP) -> None:
    parser.add_argument("--checkpoint", required=required, default=None, type=checkpoint_path, help=help)


def checkpoint_path(value: str) -> str:
    """`value` itself, or for a run's log folder the path of its best checkpoint (said in one line on stderr)."""
    if checkpoints_folder(value) is None:
        return value
    best = best_checkpoint(value)
    print(f"note: using {best.describe()}", file=sys.stderr)
    return str(best.path)
