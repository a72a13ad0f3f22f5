"""The one sampling loop: call the denoiser, filter its logits, let the strategy step; reuse unchanged outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..process import subs_log_probs
from .filters import apply_filters
from .strategies import SamplerContext, Strategy
from .trajectory import Trajectory, TrajectoryRecorder

Denoiser = Callable[[Tensor, Tensor], Tensor]
"""(tokens (B, L), attention_mask (B, L)) -> logits (B, L, V)."""


@dataclass
class SamplingResult:
    tokens: Tensor
    """(B, L) final token ids, no [MASK] left."""
    network_calls: int
    """Forward passes of the denoiser (cached and skipped steps are free)."""
    trajectory: Trajectory | None = None
    """The sequence after every step that changed it, when recording was asked for."""


@torch.no_grad()
def run_sampler(
    denoiser: Denoiser,
    tokens: Tensor,
    *,
    mask_id: int,
    strategy: Strategy,
    num_steps: int,
    filters: Sequence[Callable[..., Tensor]] = (),
    attention_mask: Tensor | None = None,
    pinned: Tensor | None = None,
    generator: torch.Generator | None = None,
    cache: bool = True,
    record: bool = False,
) -> SamplingResult:
    """Denoise `tokens` (B, L): positions holding mask_id are generated; `pinned` (B, L) positions never change.

    `pinned` defaults to every position not holding mask_id (a prompt's given tokens, padding). Unpinned
    positions that are not masked are revealed already: only a remasking strategy may change them.
    With `cache`, a step in which no token changed lets the next step reuse the previous network output (valid
    for a time-independent denoiser), and steps left after everything is revealed are skipped; the random draws
    are the same either way, so cached and uncached runs give identical samples.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    generator = generator or torch.Generator(device=tokens.device).manual_seed(0)
    attention_mask = torch.ones_like(tokens, dtype=torch.bool) if attention_mask is None else attention_mask
    pinned = tokens != mask_id if pinned is None else pinned
    if (pinned & (tokens == mask_id)).any():
        raise ValueError("a pinned position holds [MASK]; pinned positions must hold their given token")
    plans = strategy.plan(num_steps, ~pinned, tokens == mask_id)
    context = SamplerContext(mask_id, generator, time=torch.ones(tokens.shape[0], dtype=torch.float64))
    recorder = TrajectoryRecorder(tokens, pinned, mask_id) if record else None
    log_probs: Tensor | None = None
    calls = 0
    for number, plan in enumerate(plans):
        if cache and not strategy.remasks and not ((tokens == mask_id) & plan.active).any():
            continue  # nothing left to reveal in this step's positions: no network call needed
        if log_probs is None or not cache:
            logits = denoiser(tokens, attention_mask)  # (B, L, V)
            log_probs = apply_filters(subs_log_probs(logits, mask_id), filters, tokens)  # (B, L, V) float64
            calls += 1
        updated = torch.where(pinned, tokens, strategy.step(tokens, log_probs, plan, context))  # (B, L)
        if not torch.equal(updated, tokens):
            log_probs = None
            if recorder is not None:
                recorder.add(updated, number, context.time)
        tokens = updated
    if (tokens == mask_id).any():
        raise RuntimeError(f"{type(strategy).__name__} left [MASK] tokens: its plan must reveal every blank")
    return SamplingResult(tokens=tokens, network_calls=calls, trajectory=recorder.finish() if recorder else None)
