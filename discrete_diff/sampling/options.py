"""Sampling settings as one plain object, and the command-line options that fill it (shared by sample and infill)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from ..schedules import NoiseSchedule
from .confidence import CONFIDENCES
from .filters import BanTokens
from .registry import STRATEGIES, StrategyOptions, make_filters, make_strategy
from .strategies import Strategy


@dataclass(frozen=True)
class SamplingSettings:
    """Which strategy, how many steps, which logit filters."""

    strategy: str = "ancestral"
    steps: int = 256
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    options: StrategyOptions = field(default_factory=StrategyOptions)

    def make_strategy(self, schedule: NoiseSchedule | None) -> Strategy:
        return make_strategy(
            self.strategy, schedule, **{f.name: getattr(self.options, f.name) for f in fields(self.options)}
        )

    def make_filters(self, banned: list[int], mask_id: int) -> list[Callable]:
        return [BanTokens(banned)] + make_filters(
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            repetition_penalty=self.repetition_penalty,
            mask_id=mask_id,
        )


def add_sampling_arguments(parser: argparse.ArgumentParser, default_steps: int = 256) -> None:
    group = parser.add_argument_group("sampling")
    group.add_argument("--strategy", choices=sorted(STRATEGIES), default="ancestral", help="reverse-process strategy")
    group.add_argument(
        "--steps", type=int, default=default_steps, help="reverse-process steps (first-hitting: ignored)"
    )
    group.add_argument("--temperature", type=float, default=1.0)
    group.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens per position")
    group.add_argument("--top-p", type=float, default=None, help="nucleus filter: keep tokens up to probability p")
    group.add_argument("--repetition-penalty", type=float, default=None, help="> 1 discourages repeated tokens")
    group.add_argument("--confidence", choices=sorted(CONFIDENCES), default="max-prob", help="confidence strategy")
    group.add_argument("--reveals-per-step", type=int, default=None, help="confidence strategy: reveals per step")
    group.add_argument("--remask-eta", type=float, default=0.05, help="remasking: cap on the remasking probability")
    group.add_argument("--block-length", type=int, default=32, help="blocks: positions per block")
    group.add_argument("--inner-strategy", choices=sorted(set(STRATEGIES) - {"blocks"}), default="ancestral")


def settings_from_args(args: argparse.Namespace) -> SamplingSettings:
    if args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    return SamplingSettings(
        strategy=args.strategy,
        steps=args.steps,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        options=StrategyOptions(
            confidence=args.confidence,
            reveals_per_step=args.reveals_per_step,
            remask_eta=args.remask_eta,
            block_length=args.block_length,
            inner=args.inner_strategy,
        ),
    )
