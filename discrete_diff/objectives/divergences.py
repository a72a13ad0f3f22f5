"""Divergences between a student's and a target's distributions over tokens, one value per position.

Each takes log-probabilities (N, V) of the student and of the target and returns (N,). Columns where the student's
log-probability is -inf (the [MASK] column under SUBS) are outside the support and contribute nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Divergence = Callable[[Tensor, Tensor], Tensor]


def _on_support(log_probs: Tensor, support: Tensor) -> Tensor:
    """log_probs with 0 outside the support, so differences there are 0, not nan (-inf - -inf)."""
    return log_probs.masked_fill(~support, 0.0)


def reverse_kl(student: Tensor, target: Tensor) -> Tensor:
    """KL(student || target) = sum_v q(v) (log q(v) - log T(v)): mode-seeking (the SDTT paper's choice)."""
    support = torch.isfinite(student)
    return (student.exp() * (_on_support(student, support) - _on_support(target, support))).sum(-1)


def forward_kl(student: Tensor, target: Tensor) -> Tensor:
    """KL(target || student): mass-covering; linear in the target, so a target that is right on average suffices."""
    support = torch.isfinite(student)
    return (target.exp() * (_on_support(target, support) - _on_support(student, support))).sum(-1)


def total_variation(student: Tensor, target: Tensor) -> Tensor:
    """Half the L1 distance between the two distributions."""
    return 0.5 * (student.exp() - target.exp()).abs().sum(-1)


def mse_log_probs(student: Tensor, target: Tensor) -> Tensor:
    """Mean squared difference of the log-probabilities over the support."""
    support = torch.isfinite(student)
    squared = (_on_support(student, support) - _on_support(target, support)) ** 2  # (N, V)
    return squared.sum(-1) / support.sum(-1).clamp_min(1)


DIVERGENCES: dict[str, Divergence] = {
    "reverse-kl": reverse_kl,
    "forward-kl": forward_kl,
    "total-variation": total_variation,
    "mse-log-probs": mse_log_probs,
}
"""Names a config may give (`model.divergence`) -> divergence functions."""
