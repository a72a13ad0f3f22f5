"""Sampling strategies: each decides, from the current tokens and p_theta(x0 | x_t), what to reveal this step."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from ..schedules import LogLinearSchedule, NoiseSchedule
from .categorical import sample_categorical


class Strategy(ABC):
    """One step of a reverse process over a fixed number of steps.

    `cacheable` means the step depends on the network output only through p_theta(x0 | x_t), so when no
    token changed the previous output can be reused (valid for a time-independent denoiser).
    """

    cacheable: bool = True

    @abstractmethod
    def step(
        self,
        tokens: Tensor,
        log_probs: Tensor,
        step: int,
        num_steps: int,
        mask_id: int,
        generator: torch.Generator,
    ) -> Tensor:
        """tokens: (B, L) with mask_id at undecided positions; log_probs: (B, L, V) float64. Returns (B, L)."""


class Ancestral(Strategy):
    """The exact reverse step from t to s < t on a uniform time grid.

    A masked position is revealed with probability (alpha(s) - alpha(t)) / (1 - alpha(t)), its token drawn
    from p_theta(x0 | x_t); revealed positions never change; the last step reveals everything.
    """

    def __init__(self, schedule: NoiseSchedule | None = None) -> None:
        self.schedule = schedule or LogLinearSchedule()

    def reveal_probability(self, step: int, num_steps: int) -> float:
        if step == num_steps - 1:
            return 1.0
        t = torch.tensor(1.0 - step / num_steps, dtype=torch.float64)
        s = torch.tensor(1.0 - (step + 1) / num_steps, dtype=torch.float64)
        alpha_t, alpha_s = self.schedule.alpha(t), self.schedule.alpha(s)
        return float((alpha_s - alpha_t) / (1.0 - alpha_t))

    def step(
        self,
        tokens: Tensor,
        log_probs: Tensor,
        step: int,
        num_steps: int,
        mask_id: int,
        generator: torch.Generator,
    ) -> Tensor:
        masked = tokens == mask_id  # (B, L)
        u = torch.rand(tokens.shape, dtype=torch.float64, generator=generator, device=tokens.device)
        reveal = masked & (u < self.reveal_probability(step, num_steps))  # (B, L)
        if not reveal.any():
            return tokens
        tokens = tokens.clone()
        tokens[reveal] = sample_categorical(log_probs[reveal], generator)  # (N,) drawn for revealed slots only
        return tokens
