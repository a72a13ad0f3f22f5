"""The one likelihood loop: K draws per sequence at stratified uniforms, their average, and its standard error.

Every objective's `likelihood` runs through `estimate_likelihood`; an objective supplies only one draw of its
per-sequence nats for given uniforms (and, if its quantity has no randomness, says it is exact).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from ..batch import Batch
from ..process import stratified_uniforms
from .bound import LikelihoodBound

Draw = Callable[[Batch, Tensor, torch.Generator], tuple[Tensor, Tensor]]
"""(batch, u (B, *strata) in [0, 1), generator) -> (per-sequence nats (B,), scored tokens (B,)) of one draw."""

Strata = Callable[[Batch], tuple[int, ...]]
"""batch -> the shape of the uniforms one draw takes per sequence: () for one, (K,) for one per block."""


def one_per_sequence(batch: Batch) -> tuple[int, ...]:
    return ()


@torch.no_grad()
def estimate_likelihood(
    draw: Draw,
    batches: Iterable[Batch],
    *,
    time_draws: int,
    seed: int = 0,
    max_batches: int | None = None,
    strata: Strata = one_per_sequence,
    exact: bool = False,
) -> LikelihoodBound:
    """Average K draws per sequence at stratified u_k = (u + k/K) mod 1, each u ~ U(0, 1) drawn per sequence and
    per entry of `strata(batch)` (e.g. per block), so every entry's K draws cover [0, 1) evenly.

    Each draw must be unbiased for the sequence's quantity. The standard error is described in `LikelihoodBound`:
    across draws for K >= 2, across sequences for K = 1, None for one draw of one sequence. `exact`: the quantity
    has no randomness (an NLL): one draw per sequence whatever K, reported as exact (no draws, no error).
    """
    if time_draws < 1:
        raise ValueError(f"time_draws must be at least 1, got {time_draws}")
    draws_per_sequence = 1 if exact else time_draws
    generator = torch.Generator().manual_seed(seed)
    means, counts, within = [], [], 0.0
    for index, batch in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        offsets = torch.rand((batch.size, *strata(batch)), generator=generator, dtype=torch.float64)  # (B, *S)
        u = stratified_uniforms(offsets, draws_per_sequence)  # (B, *S, K)
        draws = []
        for k in range(draws_per_sequence):
            nats, tokens = draw(batch, u[..., k], generator)
            draws.append(nats.double().cpu())
        per_draw = torch.stack(draws)  # (K, B)
        means.append(per_draw.mean(0))
        counts.append(tokens.cpu().double())
        if draws_per_sequence > 1:
            within += (per_draw.var(0, unbiased=True) / draws_per_sequence).sum().item()
    if not means or int(torch.cat(counts).sum()) == 0:
        raise ValueError("no tokens to evaluate")
    nats, tokens = torch.cat(means), torch.cat(counts)  # (N,), (N,)
    total_tokens = int(tokens.sum())
    rate = float(nats.sum()) / total_tokens
    if exact:
        return LikelihoodBound(rate, 0.0, len(nats), total_tokens, time_draws=0, exact=True, error_from="")
    if draws_per_sequence > 1:
        error, source = math.sqrt(within) / total_tokens, "draws"
    elif len(nats) > 1:
        # Squared residuals around the common rate: for about equally long sequences their expected sum is at
        # least the Monte Carlo variance of the total (the differences between sequences only add to it).
        residuals = nats - rate * tokens  # (N,)
        spread = float((residuals**2).sum()) * len(nats) / (len(nats) - 1)
        error, source = math.sqrt(spread) / total_tokens, "sequences"
    else:
        error, source = None, ""
    return LikelihoodBound(
        nats_per_token=rate,
        standard_error=error,
        sequences=len(nats),
        tokens=total_tokens,
        time_draws=time_draws,
        error_from=source,
    )
