"""`discrete-diff eval --checkpoint C`: validation bits per character (diffusion: NELBO bound ± standard error;
autoregressive: exact NLL), whichever the checkpoint's objective reports."""

from __future__ import annotations

import argparse
import json

from ..checkpoint import TrainedModel, load_trained_model
from ..data import SequenceDataModule
from ..errors import UserInputError
from ..evaluation.likelihood import LikelihoodBound
from ..specs import build

NAME = "eval"
HELP = "validation bits/char of a checkpoint: NELBO bound over K time draws (diffusion) or exact NLL (autoregressive)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--time-draws", type=int, default=8, help="K time draws per sequence (default 8)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-batches", type=int, default=None, help="evaluate only this many batches")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def rebuild_datamodule(model: TrainedModel) -> SequenceDataModule:
    """The training run's data module, from the plain-data spec in the checkpoint."""
    spec = model.data.get("datamodule")
    if spec is None:
        raise UserInputError("the checkpoint records no data module to evaluate on")
    datamodule = build(spec, SequenceDataModule)
    if datamodule.tokenizer.get_vocab() != model.tokenizer.get_vocab():
        raise UserInputError("the data's tokenizer differs from the checkpoint's: was the corpus changed?")
    return datamodule


def evaluate(
    model: TrainedModel, time_draws: int, batch_size: int, max_batches: int | None, seed: int
) -> LikelihoodBound:
    if time_draws < 1:
        raise ValueError(f"--time-draws must be at least 1, got {time_draws}")
    datamodule = rebuild_datamodule(model)
    return model.objective.likelihood(
        model.network,
        datamodule.validation_batches(batch_size),
        model.mask_id,
        time_draws=time_draws,
        tokens_per_character=datamodule.tokens_per_character(),
        seed=seed,
        max_batches=max_batches,
    )


def run(args: argparse.Namespace) -> int:
    model = load_trained_model(args.checkpoint)
    bound = evaluate(model, args.time_draws, args.batch_size, args.max_batches, args.seed)
    if args.json:
        fields = {
            **bound.__dict__,
            "bits_per_character": bound.bits_per_character,
            "bits_per_character_error": bound.bits_per_character_error,
            "perplexity": bound.perplexity,
        }
        print(json.dumps(fields))
    else:
        print(bound.summary())
    return 0
