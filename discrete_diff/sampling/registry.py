"""Strategies and filters by name, so configs, the CLI and benchmark scripts can choose them without if-chains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..schedules import NoiseSchedule
from .blocks import Blocks
from .confidence import CONFIDENCES, ConfidenceUnmasking
from .filters import RepetitionPenalty, Temperature, TopK, TopP
from .remasking import Remasking
from .strategies import Ancestral, FirstHitting, Strategy


@dataclass(frozen=True)
class StrategyOptions:
    """Every strategy's knobs; each strategy reads the ones it has."""

    confidence: str = "max-prob"
    """Confidence measure of the confidence strategy: one of CONFIDENCES."""
    reveals_per_step: int | None = None
    """Confidence strategy: reveal this many per step (None: spread the blanks evenly over the steps)."""
    remask_eta: float = 0.05
    """Remasking: the cap eta on the probability of masking a revealed token again."""
    block_length: int = 32
    """Blocks: positions per block."""
    inner: str = "ancestral"
    """Blocks: the strategy that fills each block."""


def _confidence(schedule: NoiseSchedule | None, options: StrategyOptions) -> Strategy:
    if options.confidence not in CONFIDENCES:
        raise ValueError(f"unknown confidence {options.confidence!r}; choose from {', '.join(CONFIDENCES)}")
    return ConfidenceUnmasking(CONFIDENCES[options.confidence](), options.reveals_per_step)


def _blocks(schedule: NoiseSchedule | None, options: StrategyOptions) -> Strategy:
    if options.inner == "blocks" or options.inner not in STRATEGIES:
        raise ValueError(f"unknown inner strategy {options.inner!r} for blocks")
    return Blocks(STRATEGIES[options.inner](schedule, options), options.block_length)


STRATEGIES: dict[str, Callable[[NoiseSchedule | None, StrategyOptions], Strategy]] = {
    "ancestral": lambda schedule, options: Ancestral(schedule),
    "first-hitting": lambda schedule, options: FirstHitting(schedule),
    "confidence": _confidence,
    "remasking": lambda schedule, options: Remasking(schedule, eta=options.remask_eta),
    "blocks": _blocks,
}
"""name -> factory(schedule, options): the strategies a config or `--strategy` can name."""


def make_strategy(name: str, schedule: NoiseSchedule | None = None, **options) -> Strategy:
    """E.g. make_strategy("confidence", confidence="margin", reveals_per_step=4)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[name](schedule, StrategyOptions(**options))


def make_filters(
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float | None = None,
    mask_id: int | None = None,
) -> list[Callable]:
    """The logit filters for these settings, in the order applied: penalty, temperature, top-k, top-p."""
    filters: list[Callable] = []
    if repetition_penalty is not None:
        if mask_id is None:
            raise ValueError("the repetition penalty needs mask_id")
        filters.append(RepetitionPenalty(repetition_penalty, mask_id))
    filters.append(Temperature(temperature))
    filters += [TopK(top_k)] if top_k is not None else []
    filters += [TopP(top_p)] if top_p is not None else []
    return filters
