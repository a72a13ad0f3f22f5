"""ReMDM-style remasking (Wang et al. 2025): revealed tokens may be masked again, so later steps can revise them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import InvalidArgument
from ..schedules import NoiseSchedule
from .strategies import SamplerContext, StepPlan, Strategy, alphas, grid_times, reveal


@dataclass(frozen=True)
class Remasking(Strategy):
    """The ancestral step with ReMDM's "max-capped" remasking probability sigma(t) = min(eta, (1 - alpha_s) / alpha_t).

    From t to s: a revealed (unpinned) token is masked again with probability sigma; a masked one is revealed with
    probability (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t). The fraction of revealed tokens still follows
    alpha(s) at every step, and sigma <= (1 - alpha_s) / alpha_t keeps the reveal probability <= 1. Remasking is
    switched on only while t lies in `window` (ReMDM's "loop" variant remasks in a middle stretch of time); the
    last step remasks nothing and reveals everything.
    """

    remasks = True
    eta: float = 0.05
    """The cap on the probability of masking a revealed token again."""
    window: tuple[float, float] = (0.0, 1.0)
    """Remask only while t lies in this interval."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.eta <= 1.0:
            raise InvalidArgument("eta", f"must be in [0, 1], got {self.eta}")
        if not 0.0 <= self.window[0] <= self.window[1] <= 1.0:
            raise InvalidArgument("window", f"must satisfy 0 <= start <= end <= 1, got {self.window}")

    def probabilities(self, plan: StepPlan, schedule: NoiseSchedule) -> tuple[float, float]:
        """(remask probability sigma, reveal probability) for this step."""
        if plan.index == plan.count - 1:
            return 0.0, 1.0
        t, s = grid_times(plan)
        alpha_t, alpha_s = alphas(schedule, t, s)
        sigma = min(self.eta, (1.0 - alpha_s) / alpha_t) if self.window[0] <= t <= self.window[1] else 0.0
        return sigma, (alpha_s - (1.0 - sigma) * alpha_t) / (1.0 - alpha_t)

    def step(self, tokens: Tensor, log_probs: Tensor, plan: StepPlan, context: SamplerContext) -> Tensor:
        sigma, reveal_probability = self.probabilities(plan, context.schedule)
        masked = (tokens == context.mask_id) & plan.active  # (B, L)
        u = torch.rand(tokens.shape, dtype=torch.float64, generator=context.generator, device=tokens.device)
        updated = reveal(tokens, masked & (u < reveal_probability), log_probs, context.generator)
        remask = ~masked & plan.active & (u < sigma)  # (B, L) decided on the same x_t as the reveals
        context.time.fill_(grid_times(plan)[1])
        return updated.masked_fill(remask, context.mask_id)
