"""Adaptive parallel decoding (Fast-dLLM's confidence threshold): each network call reveals every blank it is sure of.

A call reveals each masked position whose top probability (of the distribution the strategy sees: after guidance
and the logit filters) exceeds `threshold`, at least one (the surest) and at most `max_per_call` (the surest
first). The number of calls follows the model's confidence, not a step count: between 1 and the number of blanks.
Tokens are drawn from that distribution, as ConfidenceUnmasking draws them; `argmax` takes the top token instead,
as Fast-dLLM does.

What it samples from is not the ancestral law. Positions revealed in one call are drawn independently given the
same x_t (the product of their conditionals, not their joint), and which positions go first depends on the model's
confidence. Threshold 1.0 lets nothing pass, so each call reveals the single surest blank: one-at-a-time confidence
decoding, L calls for L blanks, exact for exact conditionals and no filters (the chain rule, in an order chosen from
what is already revealed). Threshold 0 lets every blank pass: one call, each position drawn from its conditional
given the prompt alone. In between, k positions that pass together are within k (1 - threshold) in total variation
of a joint with those conditionals (both put at least 1 - k (1 - threshold) on the tuple of top tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import InvalidArgument
from .confidence import MaxProbability, most_confident
from .strategies import SamplerContext, StepPlan, Strategy, one_step_per_blank, reveal


@dataclass(frozen=True)
class ThresholdUnmasking(Strategy):
    """Reveal every blank whose top probability exceeds `threshold` (at least one, at most `max_per_call`).

    The filters shape the confidence too: top-k 1 or a very low temperature puts every top probability near 1,
    so everything passes in the first call; for greedy tokens use `argmax`, which leaves the confidence alone.
    """

    threshold: float = 0.9
    """Reveal a blank when its top probability is above this: 1.0 reveals one per call, 0 all in one call."""
    max_per_call: int | None = None
    """Reveal at most this many per call (the surest first); None: no cap."""
    argmax: bool = False
    """Take the most likely token at a revealed position instead of drawing it (Fast-dLLM)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise InvalidArgument("threshold", f"must be in [0, 1], got {self.threshold}")
        if self.max_per_call is not None and self.max_per_call < 1:
            raise InvalidArgument("max_per_call", f"must be at least 1, got {self.max_per_call}")

    @property
    def follows_num_steps(self) -> bool:
        return False

    def plan(self, num_steps: int, editable: Tensor, masked: Tensor) -> list[StepPlan]:
        return one_step_per_blank(editable, masked)  # the loop skips the rest once nothing is masked

    def begin(self, plan: StepPlan, context: SamplerContext) -> None:
        if plan.index == 0:
            context.time.fill_(1.0)  # a phase (e.g. a span) starts fully masked; later steps follow the blanks

    def step(self, tokens: Tensor, log_probs: Tensor, plan: StepPlan, context: SamplerContext) -> Tensor:
        masked = (tokens == context.mask_id) & plan.active  # (B, L)
        score = MaxProbability()(log_probs).masked_fill(~masked, -math.inf)  # (B, L)
        quota = (score > self.threshold).sum(-1, keepdim=True).clamp_min(1)  # (B, 1) at least the surest one
        if self.max_per_call is not None:
            quota = quota.clamp_max(self.max_per_call)
        chosen = masked & most_confident(score, quota)  # (B, L)
        left = (masked & ~chosen).sum(-1).double() / plan.active.sum(-1).clamp_min(1)  # (B,) share still masked
        context.time = torch.where(masked.any(-1), self.time_left(left, context), context.time)
        if self.argmax:
            return torch.where(chosen, log_probs.argmax(-1), tokens)
        return reveal(tokens, chosen, log_probs, context.generator)

    @staticmethod
    def time_left(share: Tensor, context: SamplerContext) -> Tensor:
        """The time whose masking probability is `share` (B,) of the phase start's, as a first-hitting clock runs:
        what a time-conditioned network (and a guidance schedule) sees. t = share under the log-linear schedule."""
        start = context.schedule.mask_probability(torch.ones_like(context.time))  # (B,) float64
        return context.schedule.time_at(1.0 - start * share)
