"""`discrete-diff sample --checkpoint C` (alias `generate`): samples of any model, in its domain's format: text
blocks, or FASTA for proteins; any strategy and logit filters; a label and classifier-free guidance toward it."""

from __future__ import annotations

import argparse
import sys

import torch

from ..domain import AT_EOS
from ..errors import UserInputError
from ..generation import GenerationRun, choose_lengths, generate, parse_lengths
from ..inference import TrainedModel, load_model
from ..sampling import StepCallback
from .checkpoint_argument import add_checkpoint_argument
from .sampling_options import add_label_argument, add_sampling_arguments, sampling_flags_given, settings_from_args

NAME = "sample"
ALIASES = ("generate",)
FILTER_FLAGS = {"--temperature", "--top-k", "--top-p", "--repetition-penalty"}
"""The sampling flags an autoregressive model takes too: they shape each next-token distribution."""
HELP = "samples from a checkpoint: text, or proteins as FASTA (also called `generate`); --label for labelled models"


def configure(parser: argparse.ArgumentParser) -> None:
    add_checkpoint_argument(parser)
    parser.add_argument("--num", type=int, default=4, help="number of samples (default: 4)")
    parser.add_argument(
        "--length",
        default=None,
        help="positions per sample: N, LOW-HIGH (uniform) or N1,N2,... (cycled); default: the training lengths",
    )
    add_label_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--batch-size", type=int, default=64, help="samples drawn together (default: 64)")
    parser.add_argument("--out", default=None, help="write here (atomically) instead of to stdout")
    parser.add_argument(
        "--at-eos",
        choices=AT_EOS,
        default="stop",
        help="text: a drawn [EOS] (document end) ends the sample (stop, default), shows as a line [EOS] (break), "
        "or is never drawn (ban)",
    )
    parser.add_argument(
        "--allow-noncanonical",
        action="store_true",
        help="proteins: also emit X, B, Z, U, O (default: the 20 canonical)",
    )
    add_sampling_arguments(parser)


def check_options(args: argparse.Namespace) -> list[int] | tuple[int, int] | None:
    """The length choice the options ask for; bad options fail here, before a model is loaded."""
    if args.num < 1:
        raise UserInputError(f"--num must be at least 1, got {args.num}")
    settings_from_args(args)
    return parse_lengths(args.length) if args.length else None


def generate_from_args(
    model: TrainedModel,
    args: argparse.Namespace,
    choice: list[int] | tuple[int, int] | None,
    on_step: StepCallback | None = None,
) -> GenerationRun:
    """The library's `generate` with the options over the model's sampling defaults (a distilled model's step
    count); sampling flags a model that takes no sampler steps (autoregressive) cannot use are refused."""
    objective = model.objective
    if not objective.sampler_steps_apply:
        refused = [flag for flag in sampling_flags_given(args) if flag not in FILTER_FLAGS]
        if refused:
            raise UserInputError(
                f"{refused[0]} does not apply to {objective.kind}: it decodes {objective.decoding.value} (the logit "
                "filters do apply)"
            )
    return generate(
        model,
        choose_lengths(model, args.num, choice, torch.Generator().manual_seed(args.seed)),
        settings=settings_from_args(args, model.default_settings()),
        label=args.label,
        seed=args.seed,
        batch_size=args.batch_size,
        allow_noncanonical=args.allow_noncanonical,
        at_eos=args.at_eos,
        on_step=on_step,
    )


def run(args: argparse.Namespace) -> int:
    choice = check_options(args)
    model = load_model(args.checkpoint)
    result = generate_from_args(model, args, choice)
    if args.out:
        path = model.domain.write_records(args.out, result.records)
        print(f"wrote {len(result.records)} samples ({result.network_calls} network calls) to {path}", file=sys.stderr)
    else:
        print(model.domain.format_records(result.records), end="")
    return 0
