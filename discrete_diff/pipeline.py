"""`DiffusionPipeline`: outputs only. Load a model directory (or checkpoint), then generate or infill strings.

Every method calls the same library functions as the CLI with the same defaults (SamplingSettings, each
strategy's dataclass, a distilled model's step count), so the same seed gives the same outputs either way.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch

from .domain import Record
from .generation import choose_lengths, generate, parse_lengths
from .inference import TrainedModel, load_model
from .infill import LikelihoodLength, UniformLength, infill
from .sampling import SamplingSettings, Strategy, strategy_named

SETTING_NAMES = {f.name for f in fields(SamplingSettings)}


def sampling_settings(settings: SamplingSettings | None = None, **options: Any) -> SamplingSettings:
    """`settings` (default: the library's) with any field replaced; `strategy` may be a Strategy or a name, and
    `strategy_options` the named strategy's own fields (e.g. strategy="remasking", strategy_options={"eta": 0.1})."""
    settings = settings or SamplingSettings()
    strategy_options = options.pop("strategy_options", None) or {}
    unknown = set(options) - SETTING_NAMES
    if unknown:
        raise TypeError(f"unknown sampling option(s) {sorted(unknown)}; known: {sorted(SETTING_NAMES)}")
    strategy = options.pop("strategy", None)
    if isinstance(strategy, str):
        strategy = strategy_named(strategy, **strategy_options)
    elif strategy_options:
        raise TypeError("strategy_options need a strategy name")
    if isinstance(strategy, Strategy):
        options["strategy"] = strategy
    return replace(settings, **options)


class DiffusionPipeline:
    """A trained model with the library's default sampling; text models give text, protein models sequences."""

    def __init__(self, model: TrainedModel) -> None:
        self.model = model

    @classmethod
    def from_pretrained(cls, path: str | Path) -> DiffusionPipeline:
        """A directory from `discrete-diff export`, or a .ckpt."""
        return cls(load_model(path))

    @property
    def domain(self) -> str:
        """ "text" or "protein"."""
        return self.model.domain.name

    @property
    def labels(self) -> list[str]:
        """The labels the model was trained with (empty for a model trained without)."""
        vocabulary = self.model.labels
        return [] if vocabulary is None else list(vocabulary.names)

    def generate_records(
        self,
        num: int = 4,
        length: int | str | None = None,
        *,
        label: str | None = None,
        seed: int = 0,
        allow_noncanonical: bool = False,
        at_eos: str = "stop",
        batch_size: int = 64,
        **sampling: Any,
    ) -> list[Record]:
        """`num` samples as records (what `discrete-diff sample` writes). `length`: N, "LOW-HIGH" or "N1,N2,..."
        positions (default: drawn from the training lengths); `label`: for a model trained with labels, the one to
        condition on (`labels` lists them; guidance_scale=w steers toward it); `at_eos`: text only, what a drawn
        [EOS] does ("stop", "break", "ban"; see `generation.generate`); `sampling`: SamplingSettings fields."""
        choice = parse_lengths(str(length)) if length is not None else None
        lengths = choose_lengths(self.model, num, choice, torch.Generator().manual_seed(seed))
        run = generate(
            self.model,
            lengths,
            settings=sampling_settings(self.model.default_settings(), **sampling),
            label=label,
            seed=seed,
            batch_size=batch_size,
            allow_noncanonical=allow_noncanonical,
            at_eos=at_eos,
        )
        return run.records

    def generate(self, num: int = 4, length: int | str | None = None, *, seed: int = 0, **options: Any) -> list[str]:
        """`num` samples as strings (see `generate_records` for the options)."""
        return [record.text for record in self.generate_records(num, length, seed=seed, **options)]

    def infill(
        self,
        prompt: str,
        *,
        num: int = 1,
        label: str | None = None,
        seed: int = 0,
        free_motif_position: bool = False,
        allow_noncanonical: bool = False,
        length_draws: int = 16,
        batch_size: int = 32,
        **sampling: Any,
    ) -> list[str]:
        """`num` fills of one prompt: text with `[MASK:N]` / `[MASK:MIN-MAX]` blanks, or a protein template such
        as `[5-15]MOTIF[10-30]`; the given pieces come back unchanged. With guidance_scale=w, fills are steered
        toward `label` and the prompt (the unconditional pass sees neither)."""
        rule = UniformLength() if free_motif_position else LikelihoodLength(length_draws)
        run = infill(
            self.model,
            [prompt],
            allow_noncanonical=allow_noncanonical,
            num=num,
            settings=sampling_settings(self.model.default_settings(), **sampling),
            label=label,
            seed=seed,
            batch_size=batch_size,
            length_rule=rule,
        )
        return [fill.text for fill in run.infills]
