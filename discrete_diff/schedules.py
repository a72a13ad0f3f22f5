"""Noise schedules alpha(t): the probability that a token is still clean at time t in [0, 1].

Each schedule is one small object holding alpha, its derivative and its inverse, so the loss weight
-alpha'(t) / (1 - alpha(t)) and the samplers' reveal probabilities are derived in one place.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor


class NoiseSchedule(ABC):
    """alpha(t) decreasing from ~1 at t=0 to ~0 at t=1."""

    @abstractmethod
    def alpha(self, t: Tensor) -> Tensor:
        """Probability that a token is unmasked at time t."""

    @abstractmethod
    def alpha_prime(self, t: Tensor) -> Tensor:
        """d alpha / dt (negative)."""

    @abstractmethod
    def time_at(self, alpha: Tensor) -> Tensor:
        """The inverse of alpha: the time at which alpha(t) equals `alpha` (first-hitting samplers need it)."""

    def mask_probability(self, t: Tensor) -> Tensor:
        """1 - alpha(t); subclasses give a form that keeps precision near t = 0."""
        return 1.0 - self.alpha(t)

    def weight(self, t: Tensor) -> Tensor:
        """NELBO weight -alpha'(t) / (1 - alpha(t)) on the summed masked-token cross-entropy."""
        return -self.alpha_prime(t) / self.mask_probability(t)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class LogLinearSchedule(NoiseSchedule):
    """MDLM's default: alpha = 1 - (1 - eps) t, so the weight is exactly 1/t.

    eps keeps a sliver of clean probability at t=1 (the 'log-linear' name comes from sigma = -log alpha).
    """

    def __init__(self, eps: float = 1e-3) -> None:
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {eps}")
        self.eps = eps

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - (1.0 - self.eps) * t

    def mask_probability(self, t: Tensor) -> Tensor:
        return (1.0 - self.eps) * t

    def alpha_prime(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -(1.0 - self.eps))

    def time_at(self, alpha: Tensor) -> Tensor:
        return (1.0 - alpha) / (1.0 - self.eps)


class LinearSchedule(NoiseSchedule):
    """alpha = 1 - t: every token is masked at t=1; the weight is 1/t."""

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def mask_probability(self, t: Tensor) -> Tensor:
        return t

    def alpha_prime(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -1.0)

    def time_at(self, alpha: Tensor) -> Tensor:
        return 1.0 - alpha


class CosineSchedule(NoiseSchedule):
    """alpha = cos(pi t / 2): slow masking early, fast late."""

    def alpha(self, t: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * t)

    def mask_probability(self, t: Tensor) -> Tensor:
        return 2.0 * torch.sin(0.25 * math.pi * t) ** 2  # 1 - cos(x) without cancellation

    def alpha_prime(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def time_at(self, alpha: Tensor) -> Tensor:
        return torch.arccos(alpha.clamp(0.0, 1.0)) * (2.0 / math.pi)


class PolynomialSchedule(NoiseSchedule):
    """alpha = 1 - t^k; the weight is k / t."""

    def __init__(self, power: float = 2.0) -> None:
        if power <= 0:
            raise ValueError(f"power must be positive, got {power}")
        self.power = power

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t**self.power

    def mask_probability(self, t: Tensor) -> Tensor:
        return t**self.power

    def alpha_prime(self, t: Tensor) -> Tensor:
        return -self.power * t ** (self.power - 1.0)

    def time_at(self, alpha: Tensor) -> Tensor:
        return (1.0 - alpha).clamp_min(0.0) ** (1.0 / self.power)
