"""`discrete-diff sample --checkpoint C`: unconditional samples, any strategy and logit filters."""

from __future__ import annotations

import argparse

from ..checkpoint import load_trained_model
from ..files import atomic_write_text
from ..generation import generate_text
from ..sampling.options import add_sampling_arguments, settings_from_args

NAME = "sample"
HELP = "generate text samples from a checkpoint"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a .ckpt written by `discrete-diff train`")
    parser.add_argument("--num", type=int, default=4, help="number of samples")
    parser.add_argument("--length", type=int, default=256, help="tokens per sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write samples here (atomically) instead of stdout")
    add_sampling_arguments(parser)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    model = load_trained_model(args.checkpoint)
    max_length = model.network.config.max_length
    if not 1 <= args.length <= max_length:
        raise ValueError(f"--length {args.length} must be between 1 and the model's max_length {max_length}")
    samples = generate_text(model, num_samples=args.num, length=args.length, seed=args.seed, settings=settings)
    text = "".join(f"=== sample {i} ===\n{sample}\n" for i, sample in enumerate(samples))
    if args.out:
        atomic_write_text(args.out, text)
    else:
        print(text, end="")
    return 0
