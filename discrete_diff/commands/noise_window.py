"""`discrete-diff noise-window --checkpoint C [--data PATH]`: pick a block-diffusion model's clipped noise window.

Scores each window [beta, omega] by the variance of the training loss on validation data and prints the one
with the least, with the config lines that train with it (BD3-LM's data-driven schedule).
"""

from __future__ import annotations

import argparse
import json

from ..errors import UserInputError
from ..inference import load_model
from ..objectives.noise_window import choose_noise_window, inner_schedule
from ..specs import to_spec
from .checkpoint_argument import add_checkpoint_argument
from .eval import add_data_arguments, evaluation_data

NAME = "noise-window"
HELP = "choose a block-diffusion model's clipped noise window [beta, omega] by the variance of its loss"
DEFAULT_WINDOWS = "0-1,0.1-0.9,0.2-0.8,0.3-0.8,0.45-0.95,0.5-1"
"""The full range and BD3-LM's kind of candidates (windows that drop the extremes)."""


def configure(parser: argparse.ArgumentParser) -> None:
    add_checkpoint_argument(parser, help="a block-diffusion .ckpt, exported directory or run's log folder")
    add_data_arguments(parser)
    parser.add_argument(
        "--windows",
        default=DEFAULT_WINDOWS,
        help=f"candidate BETA-OMEGA masking-rate windows (default: {DEFAULT_WINDOWS})",
    )
    parser.add_argument("--draws", type=int, default=8, help="loss draws per batch and window (default: 8)")
    parser.add_argument("--max-batches", type=int, default=8, help="validation batches to use (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")


def parse_windows(text: str) -> list[tuple[float, float]]:
    windows = []
    for part in text.split(","):
        try:
            beta, omega = (float(value) for value in part.split("-"))
        except ValueError:
            raise UserInputError(f"--windows {text!r}: expected BETA-OMEGA pairs such as 0.3-0.8") from None
        windows.append((beta, omega))
    return windows


def run(args: argparse.Namespace) -> int:
    windows = parse_windows(args.windows)
    model = load_model(args.checkpoint)
    if not model.objective.noise_window_applies:
        raise UserInputError(
            f"--checkpoint: noise windows are for block-diffusion models, not {type(model.objective).__name__}"
        )
    data = evaluation_data(model, args)
    best, scores = choose_noise_window(
        model.objective, model.network, data.batches, model.mask_id, windows,
        draws=args.draws, seed=args.seed, max_batches=args.max_batches,
    )  # fmt: skip
    if args.json:
        print(json.dumps({"chosen": best.__dict__, "scores": [score.__dict__ for score in scores]}))
        return 0
    for score in scores:
        mark = "  <- least variance" if score is best else ""
        print(f"[{score.beta}, {score.omega}]: loss {score.mean:.4f} nats/token, variance {score.variance:.4g}{mark}")
    schedule = {"class_path": "discrete_diff.schedules.ClippedSchedule", "init_args": {
        "inner": to_spec(inner_schedule(model.objective)), "beta": best.beta, "omega": best.omega}}  # fmt: skip
    print(f"train with: --model.objective.init_args.schedule '{json.dumps(schedule)}'")
    return 0
