"""`discrete-diff quickstart`: train the default config, then print the validation bound and a few samples."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..checkpoint import load_trained_model
from ..errors import UserInputError
from ..generation import generate_text
from .evaluate import evaluate
from .train import build_cli, fit

NAME = "quickstart"
HELP = "train a config (default: Shakespeare characters), then evaluate it and print samples"
PASSTHROUGH = True


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(passthrough=[])


def _own_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="discrete-diff quickstart", add_help=False)
    parser.add_argument("--config", default="configs/shakespeare_char.yaml")
    parser.add_argument("--time-draws", type=int, default=8)
    parser.add_argument("--eval-batches", type=int, default=None)
    parser.add_argument("--num-samples", type=int, default=3)
    parser.add_argument("--sample-length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=256)
    return parser


def run(args: argparse.Namespace) -> int:
    options, lightning_args = _own_options().parse_known_args(args.passthrough)
    if not Path(options.config).is_file():
        raise UserInputError(f"--config {options.config}: file not found (run from the repository root)")
    started = time.perf_counter()
    cli = build_cli(["--config", options.config, *lightning_args])
    fit(cli)
    trained_for = time.perf_counter() - started
    callback = cli.trainer.checkpoint_callback
    checkpoint = (callback.best_model_path or callback.last_model_path) if callback else ""
    if not checkpoint:
        raise UserInputError("training wrote no checkpoint: add a ModelCheckpoint callback to the config")
    model = load_trained_model(checkpoint)
    bound = evaluate(model, options.time_draws, 32, options.eval_batches, seed=0)
    print(f"\ntrained {model.global_step} steps in {trained_for / 60:.1f} min; checkpoint: {checkpoint}")
    print(f"validation {bound.summary()}")
    samples = generate_text(
        model, num_samples=options.num_samples, length=options.sample_length, steps=options.steps, seed=0
    )
    for index, sample in enumerate(samples):
        print(f"\n=== sample {index} ===\n{sample}")
    return 0
