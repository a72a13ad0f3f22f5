"""The one sampling loop: call the denoiser, filter its logits, let the strategy step; reuse unchanged outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..process import subs_log_probs
from .filters import apply_filters
from .strategies import Strategy

Denoiser = Callable[[Tensor, Tensor], Tensor]
"""(tokens (B, L), attention_mask (B, L)) -> logits (B, L, V)."""


@dataclass
class SamplingResult:
    tokens: Tensor
    """(B, L) final token ids, no [MASK] left."""
    network_calls: int
    """Forward passes of the denoiser (cached steps are free)."""


@torch.no_grad()
def run_sampler(
    denoiser: Denoiser,
    tokens: Tensor,
    *,
    mask_id: int,
    strategy: Strategy,
    num_steps: int,
    filters: Sequence[Callable[[Tensor], Tensor]] = (),
    attention_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    cache: bool = True,
) -> SamplingResult:
    """Denoise `tokens` (B, L): positions holding mask_id are generated, every other position is kept.

    With `cache`, a step in which no token changed lets the next step reuse the previous network output;
    the random draws are the same either way, so cached and uncached runs give identical samples.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    generator = generator or torch.Generator(device=tokens.device).manual_seed(0)
    attention_mask = torch.ones_like(tokens, dtype=torch.bool) if attention_mask is None else attention_mask
    reuse = cache and strategy.cacheable
    log_probs: Tensor | None = None
    calls = 0
    for step in range(num_steps):
        if log_probs is None or not reuse:
            logits = denoiser(tokens, attention_mask)  # (B, L, V)
            log_probs = apply_filters(subs_log_probs(logits, mask_id), filters)  # (B, L, V) float64
            calls += 1
        updated = strategy.step(tokens, log_probs, step, num_steps, mask_id, generator)
        if not torch.equal(updated, tokens):
            log_probs = None
        tokens = updated
    return SamplingResult(tokens=tokens, network_calls=calls)
