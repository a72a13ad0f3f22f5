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


class ClippedSchedule(NoiseSchedule):
    """`inner` everywhere, except that training draws only masking rates 1 - alpha in [beta, omega] (BD3-LM).

    Masking rates near 0 (a handful of masked tokens, weight ~1/t) and near 1 (almost nothing to condition on)
    make the loss estimate noisy while teaching little; leaving them out of the training draws trades a little
    bias for much lower variance. The bound a model reports, and the samplers, still use `inner` over [0, 1].
    """

    def __init__(self, inner: NoiseSchedule | None = None, beta: float = 0.3, omega: float = 0.8) -> None:
        if not 0.0 <= beta < omega <= 1.0:
            raise ValueError(f"need 0 <= beta < omega <= 1, got beta={beta}, omega={omega}")
        self.inner = inner or LogLinearSchedule()
        self.beta, self.omega = beta, omega

    def alpha(self, t: Tensor) -> Tensor:
        return self.inner.alpha(t)

    def alpha_prime(self, t: Tensor) -> Tensor:
        return self.inner.alpha_prime(t)

    def time_at(self, alpha: Tensor) -> Tensor:
        return self.inner.time_at(alpha)

    def mask_probability(self, t: Tensor) -> Tensor:
        return self.inner.mask_probability(t)

    def training_interval(self) -> tuple[float, float]:
        """The times whose masking rates lie in [beta, omega], clamped to [0, 1]."""
        rates = torch.tensor([self.beta, self.omega], dtype=torch.float64)
        low, high = self.inner.time_at(1.0 - rates).clamp(0.0, 1.0).tolist()
        return low, high


def training_interval(schedule: NoiseSchedule, t_min: float) -> tuple[float, float]:
    """The times training draws from: [t_min, 1], narrowed to a ClippedSchedule's window."""
    if isinstance(schedule, ClippedSchedule):
        low, high = schedule.training_interval()
        return max(low, t_min), max(high, t_min)
    return t_min, 1.0
