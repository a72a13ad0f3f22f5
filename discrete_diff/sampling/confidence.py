"""Confidence-ordered unmasking (MaskGIT; LLaDA's "low-confidence remasking"): reveal the surest positions first."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import InvalidArgument
from .strategies import SamplerContext, StepPlan, Strategy, grid_times, reveal


class Confidence(ABC):
    """How sure the denoiser is at each position: larger is surer."""

    @abstractmethod
    def __call__(self, log_probs: Tensor) -> Tensor:
        """log_probs (B, L, V) float64 -> confidence (B, L)."""


@dataclass(frozen=True)
class MaxProbability(Confidence):
    def __call__(self, log_probs: Tensor) -> Tensor:
        return log_probs.max(-1).values.exp()


@dataclass(frozen=True)
class TopTwoMargin(Confidence):
    """p(best) - p(second best): small when two tokens compete."""

    def __call__(self, log_probs: Tensor) -> Tensor:
        top = torch.topk(log_probs, 2, dim=-1).values.exp()  # (B, L, 2)
        return top[..., 0] - top[..., 1]


@dataclass(frozen=True)
class NegativeEntropy(Confidence):
    def __call__(self, log_probs: Tensor) -> Tensor:
        probs = log_probs.exp()
        return (probs * log_probs.clamp_min(-1e30)).nan_to_num(0.0).sum(-1)


@dataclass(frozen=True)
class ConfidenceUnmasking(Strategy):
    """Each step reveals the k masked positions of highest confidence, drawing their tokens from p_theta.

    With `reveals_per_step` = k the plan has ceil(blanks / k) steps; without it the blanks are spread evenly
    over `num_steps` steps (ceil(remaining / steps left) each). With one reveal per step and exact
    conditionals this is exact whatever the order (the chain rule); more reveals per step draw them jointly
    as if independent.
    """

    confidence: Confidence = MaxProbability()
    """How sureness is measured: MaxProbability, TopTwoMargin or NegativeEntropy."""
    reveals_per_step: int | None = None
    """Reveal this many per step (the plan's length then follows the blanks); None spreads them over the steps."""

    def __post_init__(self) -> None:
        if self.reveals_per_step is not None and self.reveals_per_step < 1:
            raise InvalidArgument("reveals_per_step", f"must be at least 1, got {self.reveals_per_step}")

    @property
    def follows_num_steps(self) -> bool:
        return self.reveals_per_step is None  # a fixed k sets the plan's length by itself

    def plan(self, num_steps: int, editable: Tensor, masked: Tensor) -> list[StepPlan]:
        if self.reveals_per_step is None:
            return super().plan(num_steps, editable, masked)
        count = math.ceil(int((editable & masked).sum(-1).max()) / self.reveals_per_step)
        return [StepPlan(index, count, editable) for index in range(count)]

    def step(self, tokens: Tensor, log_probs: Tensor, plan: StepPlan, context: SamplerContext) -> Tensor:
        masked = (tokens == context.mask_id) & plan.active  # (B, L)
        remaining = masked.sum(-1, keepdim=True)  # (B, 1)
        if self.reveals_per_step is None:
            quota = torch.div(remaining + plan.count - plan.index - 1, plan.count - plan.index, rounding_mode="floor")
        else:
            quota = remaining.clamp_max(self.reveals_per_step)
        score = self.confidence(log_probs).masked_fill(~masked, -math.inf)  # (B, L)
        context.time.fill_(grid_times(plan)[1])
        return reveal(tokens, masked & most_confident(score, quota), log_probs, context.generator)


def most_confident(score: Tensor, quota: Tensor) -> Tensor:
    """(B, L) bool: the `quota` (B, 1) positions of highest `score` (B, L) in each row, ties to the leftmost."""
    rank = score.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1)  # (B, L) 0 = most confident
    return rank < quota
