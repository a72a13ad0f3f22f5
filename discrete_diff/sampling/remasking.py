"""ReMDM-style remasking (Wang et al. 2025): revealed tokens may be masked again, so later steps can revise them."""

from __future__ import annotations

import torch
from torch import Tensor

from ..schedules import LogLinearSchedule, NoiseSchedule
from .strategies import SamplerContext, StepPlan, Strategy, grid_times, reveal


class Remasking(Strategy):
    """The ancestral step with ReMDM's "max-capped" remasking probability sigma(t) = min(eta, (1 - alpha_s) / alpha_t).

    From t to s: a revealed (unpinned) token is masked again with probability sigma; a masked one is revealed with
    probability (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t). The fraction of revealed tokens still follows
    alpha(s) at every step, and sigma <= (1 - alpha_s) / alpha_t keeps the reveal probability <= 1. Remasking is
    switched on only while t lies in `window` (ReMDM's "loop" variant remasks in a middle stretch of time); the
    last step remasks nothing and reveals everything.
    """

    remasks = True

    def __init__(
        self, schedule: NoiseSchedule | None = None, eta: float = 0.05, window: tuple[float, float] = (0.0, 1.0)
    ) -> None:
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"remasking eta must be in [0, 1], got {eta}")
        self.schedule = schedule or LogLinearSchedule()
        self.eta, self.window = eta, window

    def probabilities(self, plan: StepPlan) -> tuple[float, float]:
        """(remask probability sigma, reveal probability) for this step."""
        if plan.index == plan.count - 1:
            return 0.0, 1.0
        t, s = grid_times(plan)
        alpha_t, alpha_s = (float(self.schedule.alpha(torch.tensor(x, dtype=torch.float64))) for x in (t, s))
        sigma = min(self.eta, (1.0 - alpha_s) / alpha_t) if self.window[0] <= t <= self.window[1] else 0.0
        return sigma, (alpha_s - (1.0 - sigma) * alpha_t) / (1.0 - alpha_t)

    def step(self, tokens: Tensor, log_probs: Tensor, plan: StepPlan, context: SamplerContext) -> Tensor:
        sigma, reveal_probability = self.probabilities(plan)
        masked = (tokens == context.mask_id) & plan.active  # (B, L)
        u = torch.rand(tokens.shape, dtype=torch.float64, generator=context.generator, device=tokens.device)
        updated = reveal(tokens, masked & (u < reveal_probability), log_probs, context.generator)
        remask = ~masked & plan.active & (u < sigma)  # (B, L) decided on the same x_t as the reveals
        context.time.fill_(grid_times(plan)[1])
        return updated.masked_fill(remask, context.mask_id)
