"""`discrete-diff export --checkpoint C --out DIR`: a Lightning checkpoint as a transformers model directory."""

from __future__ import annotations

import argparse

from ..hf.export import save_pretrained
from ..inference import load_model
from .checkpoint_argument import add_checkpoint_argument

NAME = "export"
HELP = "write a checkpoint as a transformers model directory (config.json, model.safetensors, tokenizer.json)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_checkpoint_argument(parser, help="a .ckpt from `discrete-diff train` or a run's log folder (its best)")
    parser.add_argument("--out", required=True, help="the model directory to create")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    print(save_pretrained(load_model(args.checkpoint), args.out, overwrite=args.overwrite))
    return 0
