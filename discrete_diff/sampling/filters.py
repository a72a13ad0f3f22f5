"""Logit filters: small callables (B, L, V) -> (B, L, V) composed onto any sampling strategy."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor


class BanTokens:
    """Never emit these ids (e.g. [MASK], [PAD], [BOS], [UNK], or non-canonical residues)."""

    def __init__(self, token_ids: Iterable[int]) -> None:
        self.token_ids = sorted(set(token_ids))

    def __call__(self, logits: Tensor) -> Tensor:
        logits = logits.clone()
        logits[..., self.token_ids] = -math.inf
        return logits


class Temperature:
    """Divide logits by tau: tau < 1 sharpens, tau > 1 flattens."""

    def __init__(self, tau: float) -> None:
        if tau <= 0:
            raise ValueError(f"temperature must be positive, got {tau}")
        self.tau = tau

    def __call__(self, logits: Tensor) -> Tensor:
        return logits / self.tau


def apply_filters(logits: Tensor, filters: Iterable) -> Tensor:
    """Run the filters in order on float64 logits and return log-probabilities (B, L, V)."""
    logits = logits.double()
    for logit_filter in filters:
        logits = logit_filter(logits)
    return torch.log_softmax(logits, dim=-1)
