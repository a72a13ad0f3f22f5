"""`discrete-diff generate --checkpoint C --num N --out x.fasta`: new proteins from a protein model, as FASTA."""

from __future__ import annotations

import argparse

import torch

from ..checkpoint import load_trained_model
from ..errors import UserInputError
from ..protein.fasta import write_fasta
from ..protein.generate import GenerationSettings, choose_lengths, generate_proteins, parse_lengths
from ..protein.tokenizer import ESM2_VOCABULARY
from ..sampling.options import add_sampling_arguments, settings_from_args

NAME = "generate"
HELP = "generate protein sequences from a protein checkpoint into a FASTA file"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a .ckpt of a model trained on proteins")
    parser.add_argument("--num", type=int, default=10, help="number of sequences (default: 10)")
    parser.add_argument("--out", required=True, help="FASTA file to write (atomically)")
    parser.add_argument(
        "--length",
        default=None,
        help="residues: N, LOW-HIGH (uniform) or N1,N2,... (cycled); default: drawn from the training lengths",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=50, help="sequences denoised together")
    parser.add_argument(
        "--allow-noncanonical", action="store_true", help="also emit X, B, Z, U, O (default: the 20 canonical only)"
    )
    add_sampling_arguments(parser, default_steps=100)


def run(args: argparse.Namespace) -> int:
    if args.num < 1 or args.batch_size < 1:
        raise UserInputError("--num and --batch-size must be positive")
    model = load_trained_model(args.checkpoint)
    if model.tokenizer.convert_ids_to_tokens(list(range(len(ESM2_VOCABULARY)))) != list(ESM2_VOCABULARY):
        raise UserInputError(f"{args.checkpoint}: not a protein model (its vocabulary is not the amino-acid one)")
    settings = GenerationSettings(
        sampling=settings_from_args(args),
        seed=args.seed,
        allow_noncanonical=args.allow_noncanonical,
        batch_size=args.batch_size,
    )
    lengths_choice = parse_lengths(args.length) if args.length else None
    generator = torch.Generator().manual_seed(args.seed)
    lengths = choose_lengths(model, args.num, lengths_choice, generator)
    records, calls = generate_proteins(model, lengths, settings)
    path = write_fasta(args.out, records)
    print(f"wrote {len(records)} sequences ({sum(lengths)} residues, {calls} network calls) to {path}")
    return 0
