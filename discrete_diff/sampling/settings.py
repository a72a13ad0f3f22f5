"""Sampling settings as one plain object: a strategy (which owns its own settings) and the logit filters.

This is the one place where a strategy and its filters are put together; the CLI, the pipeline and the web app
only fill it in. Every default lives here (and in each strategy's dataclass), nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from ..errors import InvalidArgument
from .bidirectional_cache import check_cache
from .confidence import ConfidenceUnmasking, MaxProbability, NegativeEntropy, TopTwoMargin
from .filters import BanTokens, LogitFilter, RepetitionPenalty, Temperature, TopK, TopP
from .guidance import GUIDANCE_SCHEDULES
from .remasking import Remasking
from .spans import Spans
from .strategies import Ancestral, FirstHitting, Strategy
from .threshold import ThresholdUnmasking

STRATEGIES: dict[str, type[Strategy]] = {
    "ancestral": Ancestral,
    "first-hitting": FirstHitting,
    "confidence": ConfidenceUnmasking,
    "remasking": Remasking,
    "spans": Spans,
    "threshold": ThresholdUnmasking,
}
"""Names users type (CLI, pipeline, web app) -> strategy classes."""

CONFIDENCES = {"max-prob": MaxProbability, "margin": TopTwoMargin, "entropy": NegativeEntropy}
"""Names of the confidence measures of ConfidenceUnmasking."""


@dataclass(frozen=True)
class SamplingSettings:
    """Which strategy, how many steps, which logit filters (applied in the order: penalty, temperature, k, p)."""

    strategy: Strategy = field(default_factory=Ancestral)
    """The reverse process, with its own settings (e.g. Remasking(eta=0.1))."""
    steps: int = 256
    """Reverse-process steps (strategies whose plan follows the blanks ignore it)."""
    temperature: float = 1.0
    """Divide logits by this: < 1 sharpens, > 1 flattens."""
    top_k: int | None = None
    """Keep the k most likely tokens per position."""
    top_p: float | None = None
    """Nucleus filter: keep the most likely tokens up to probability p."""
    repetition_penalty: float | None = None
    """> 1 makes tokens already in the sequence less likely (CTRL's penalty)."""
    guidance_scale: float = 0.0
    """Classifier-free guidance w toward the label (and, when infilling, the prompt); 0 samples conditionally."""
    guidance_schedule: str = "constant"
    """How w grows over the run (guidance.GUIDANCE_SCHEDULES): constant, weak early and w at the end, or late."""
    cache: str | None = None
    """An approximate key-value cache (bidirectional_cache.CACHE_KINDS): prefix, dual (both with the spans
    strategy) or dkv; None runs every position at every call."""
    cache_refresh: int | None = None
    """With a cache: also recompute every position every this many calls (1: the uncached sampler exactly)."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise InvalidArgument("steps", f"must be at least 1, got {self.steps}")
        if not (math.isfinite(self.guidance_scale) and self.guidance_scale >= 0):
            raise InvalidArgument("guidance_scale", f"must be a finite number >= 0, got {self.guidance_scale}")
        if self.guidance_schedule not in GUIDANCE_SCHEDULES:
            raise InvalidArgument(
                "guidance_schedule",
                f"{self.guidance_schedule!r} is unknown; choose from {', '.join(GUIDANCE_SCHEDULES)}",
            )
        check_cache(self.cache, self.cache_refresh, self.strategy)
        # The filters validate their own arguments; build them once so a bad value fails here, not mid-run.
        self.filters(banned=(), mask_id=0)

    def filters(self, banned: Sequence[int], mask_id: int) -> list[LogitFilter]:
        """The logit filters: banned ids first, then penalty, temperature, top-k, top-p."""
        filters: list[LogitFilter] = [BanTokens(banned)] if banned else []
        if self.repetition_penalty is not None:
            filters.append(RepetitionPenalty(self.repetition_penalty, mask_id))
        filters.append(Temperature(self.temperature))
        filters += [TopK(self.top_k)] if self.top_k is not None else []
        filters += [TopP(self.top_p)] if self.top_p is not None else []
        return filters


def strategy_named(name: str, **options) -> Strategy:
    """E.g. strategy_named("remasking", eta=0.1); `options` are the strategy's own dataclass fields."""
    if name not in STRATEGIES:
        raise InvalidArgument("strategy", f"{name!r} is unknown; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[name](**options)


def settings_header(settings: SamplingSettings) -> list[str]:
    """`key=value` words that say how samples were drawn (FASTA headers, sample titles); filters only when set."""
    strategy = settings.strategy
    name = next(n for n, cls in STRATEGIES.items() if isinstance(strategy, cls))
    words = [f"strategy={name}", f"steps={settings.steps}"]
    words += [f"{f.name}={_word(getattr(strategy, f.name))}" for f in fields(strategy)]  # type: ignore[arg-type]
    words.append(f"temperature={settings.temperature}")
    words += [
        f"{key}={value}"
        for key in ("top_k", "top_p", "repetition_penalty")
        if (value := getattr(settings, key)) is not None
    ]
    if settings.cache is not None:
        words.append(f"cache={settings.cache}")
        words += [f"cache_refresh={settings.cache_refresh}"] if settings.cache_refresh is not None else []
    if settings.guidance_scale:
        words += [f"guidance_scale={settings.guidance_scale}", f"guidance_schedule={settings.guidance_schedule}"]
    return words


def _word(value) -> str:
    """A setting as one word: strategies and confidences by their names."""
    for names in (STRATEGIES, CONFIDENCES):
        for name, cls in names.items():
            if type(value) is cls:
                return name
    return str(value).replace(" ", "")
