"""Logit filters: small callables (logits (B, L, V), tokens (B, L) or None) -> logits, composed onto any strategy.

`tokens` is the current sequence (with [MASK] at undecided positions); only filters that look at the context,
like the repetition penalty, use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from ..errors import InvalidArgument

LogitFilter = Callable[[Tensor, Tensor | None], Tensor]
"""(logits (B, L, V) float64, current tokens (B, L) or None) -> logits."""


class BanTokens:
    """Never emit these ids (e.g. [MASK], [PAD], [BOS], [UNK], or non-canonical residues)."""

    def __init__(self, token_ids: Iterable[int]) -> None:
        self.token_ids = sorted(set(token_ids))

    def __call__(self, logits: Tensor, tokens: Tensor | None = None) -> Tensor:
        logits = logits.clone()
        logits[..., self.token_ids] = -math.inf
        return logits


class Temperature:
    """Divide logits by tau: tau < 1 sharpens, tau > 1 flattens."""

    def __init__(self, tau: float) -> None:
        if tau <= 0:
            raise InvalidArgument("temperature", f"must be positive, got {tau}")
        self.tau = tau

    def __call__(self, logits: Tensor, tokens: Tensor | None = None) -> Tensor:
        return logits / self.tau


class TopK:
    """Keep the k most likely tokens at each position."""

    def __init__(self, k: int) -> None:
        if k < 1:
            raise InvalidArgument("top_k", f"must be at least 1, got {k}")
        self.k = k

    def __call__(self, logits: Tensor, tokens: Tensor | None = None) -> Tensor:
        if self.k >= logits.shape[-1]:
            return logits
        kth = torch.topk(logits, self.k, dim=-1).values[..., -1:]  # (B, L, 1)
        return logits.masked_fill(logits < kth, -math.inf)


class TopP:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches p."""

    def __init__(self, p: float) -> None:
        if not 0.0 < p <= 1.0:
            raise InvalidArgument("top_p", f"must be in (0, 1], got {p}")
        self.p = p

    def __call__(self, logits: Tensor, tokens: Tensor | None = None) -> Tensor:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, L, V)
        probs = torch.softmax(sorted_logits, dim=-1)
        # A token is dropped when the tokens before it already reach p; the most likely one always stays.
        drop_sorted = (probs.cumsum(-1) - probs) >= self.p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        return logits.masked_fill(drop, -math.inf)


class RepetitionPenalty:
    """CTRL's penalty: a token already present in the sequence has its logit divided by `penalty` if positive,
    multiplied by it if negative, so it becomes less likely to be drawn again."""

    def __init__(self, penalty: float, mask_id: int) -> None:
        if penalty <= 0:
            raise InvalidArgument("repetition_penalty", f"must be positive, got {penalty}")
        self.penalty, self.mask_id = penalty, mask_id

    def __call__(self, logits: Tensor, tokens: Tensor | None = None) -> Tensor:
        if tokens is None:
            raise ValueError("the repetition penalty needs the current tokens")
        present = torch.zeros(logits.shape[0], logits.shape[-1], dtype=torch.bool, device=logits.device)  # (B, V)
        present.scatter_(1, tokens, True)
        present[:, self.mask_id] = False
        penalised = torch.where(logits > 0, logits / self.penalty, logits * self.penalty)
        return torch.where(present[:, None, :], penalised, logits)  # (B, L, V)


def apply_filters(logits: Tensor, filters: Iterable, tokens: Tensor | None = None) -> Tensor:
    """Run the filters in order on float64 logits and return log-probabilities (B, L, V)."""
    logits = logits.double()
    for logit_filter in filters:
        logits = logit_filter(logits, tokens)
    return torch.log_softmax(logits, dim=-1)
