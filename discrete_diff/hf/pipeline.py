"""`DiffusionPipeline`: outputs only. Load a model directory (or checkpoint), then generate or infill strings.

Every method calls the same functions as the CLI (`sample`, `generate`, `infill`) with the same defaults, so
the same seed gives the same outputs either way.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from ..checkpoint import TrainedModel, load_trained_model
from ..commands import generate as generate_command
from ..commands import infill as infill_command
from ..commands import sample as sample_command
from ..errors import UserInputError
from ..generation import generate_text
from ..infill import LikelihoodLength, infill_text, scaffold_proteins
from ..protein.fasta import ProteinRecord
from ..protein.generate import GenerationSettings, choose_lengths, generate_proteins, parse_lengths
from ..protein.tokenizer import ESM2_VOCABULARY
from ..sampling.options import settings_from_args

REQUIRED = ["--checkpoint", "-", "--out", "-"]
"""Placeholders for the commands' required options (files the pipeline does not use)."""


def command_options(command: ModuleType, **chosen: Any) -> argparse.Namespace:
    """The options the CLI command would run with: its own defaults, then the caller's choices (None = default)."""
    parser = argparse.ArgumentParser()
    command.configure(parser)
    options = parser.parse_args(REQUIRED)
    for name, value in chosen.items():
        if not hasattr(options, name):
            raise UserInputError(f"unknown option {name!r} for `discrete-diff {command.NAME}`")
        if value is not None:
            setattr(options, name, value)
    return options


class DiffusionPipeline:
    """A trained model with the library's default sampling; text models give text, protein models sequences."""

    def __init__(self, model: TrainedModel) -> None:
        self.model = model

    @classmethod
    def from_pretrained(cls, path: str | Path) -> DiffusionPipeline:
        """A directory from `save_pretrained` / `discrete-diff export`, or a .ckpt."""
        return cls(load_trained_model(path))

    @property
    def is_protein(self) -> bool:
        ids = list(range(len(ESM2_VOCABULARY)))
        return self.model.tokenizer.convert_ids_to_tokens(ids) == list(ESM2_VOCABULARY)

    def generate(self, num: int = 4, length: int | str | None = None, *, seed: int = 0, **sampling: Any) -> list[str]:
        """`num` unconditional samples. Text: `length` tokens (default as `discrete-diff sample`). Proteins: residues
        as N, LOW-HIGH or N1,N2,... (default: drawn from the training lengths).

        `sampling`: any sampling option of the CLI by its name (steps, strategy, temperature, top_k, ...).
        """
        if self.is_protein:
            return [record.sequence for record in self.generate_fasta(num, length, seed=seed, **sampling)]
        options = command_options(sample_command, num=num, length=length, seed=seed, **sampling)
        return generate_text(
            self.model,
            num_samples=options.num,
            length=int(options.length),
            seed=options.seed,
            settings=settings_from_args(options),
        )

    def generate_fasta(
        self, num: int = 10, length: int | str | None = None, *, seed: int = 0, **options: Any
    ) -> list[ProteinRecord]:
        """Protein samples as the FASTA records `discrete-diff generate` writes (options: steps, strategy, ...)."""
        if not self.is_protein:
            raise UserInputError("generate_fasta needs a protein model (its vocabulary is not the amino-acid one)")
        chosen = command_options(generate_command, num=num, seed=seed, **options)
        settings = GenerationSettings(
            sampling=settings_from_args(chosen),
            seed=chosen.seed,
            allow_noncanonical=chosen.allow_noncanonical,
            batch_size=chosen.batch_size,
        )
        choice = parse_lengths(str(length)) if length is not None else None
        lengths = choose_lengths(self.model, num, choice, torch.Generator().manual_seed(seed))
        records, _ = generate_proteins(self.model, lengths, settings)
        return records

    def infill(self, prompt: str, *, num: int = 1, seed: int = 0, **sampling: Any) -> list[str]:
        """`num` fills of one prompt: text with `[MASK:N]` / `[MASK:MIN-MAX]` blanks, or a protein template such
        as `[5-15]MOTIF[10-30]`; the given pieces come back unchanged."""
        chosen = command_options(infill_command, num=num, seed=seed, **sampling)
        options = dict(
            num=chosen.num,
            settings=settings_from_args(chosen),
            seed=chosen.seed,
            batch_size=chosen.batch_size,
            length_rule=LikelihoodLength(chosen.length_draws),
        )
        if self.is_protein:
            run = scaffold_proteins(self.model, prompt, allow_noncanonical=chosen.allow_noncanonical, **options)
        else:
            run = infill_text(self.model, [prompt], **options)
        return [infill.text for infill in run.infills]
