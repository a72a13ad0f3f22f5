"""Categorical draws in float64: float32 Gumbel noise lowers the effective temperature (Zheng et al. 2024)."""

from __future__ import annotations

import torch
from torch import Tensor


def gumbel_noise(
    shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Standard Gumbel noise in float64."""
    tiny = torch.finfo(torch.float64).tiny
    u = torch.rand(shape, dtype=torch.float64, generator=generator, device=device).clamp_(tiny, 1.0 - 1e-16)
    return -torch.log(-torch.log(u))


def sample_categorical(log_probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw per row of log_probs (..., V), computed in float64; returns indices (...)."""
    log_probs = log_probs.double()
    return torch.argmax(log_probs + gumbel_noise(log_probs.shape, generator, log_probs.device), dim=-1)
