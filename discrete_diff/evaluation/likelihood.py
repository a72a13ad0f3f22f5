"""The validation NELBO as a bound on bits per character, averaged over K time draws per sequence."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..data import Batch

if TYPE_CHECKING:  # objectives.py calls nelbo_bound: a run-time import would be circular
    from ..objectives import MaskedDiffusion


@dataclass(frozen=True)
class LikelihoodBound:
    """NELBO in nats per scored token with the Monte Carlo standard error of its time draws.

    An autoregressive model fills in the same record with its exact NLL (`exact`, no draws, no error).
    """

    nats_per_token: float
    standard_error: float
    tokens_per_character: float
    sequences: int
    tokens: int
    time_draws: int
    exact: bool = False

    @property
    def bits_per_character(self) -> float:
        return self.nats_per_token * self.tokens_per_character / math.log(2)

    @property
    def bits_per_character_error(self) -> float:
        return self.standard_error * self.tokens_per_character / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_token)

    def summary(self) -> str:
        if self.exact:
            return (
                f"NLL = {self.bits_per_character:.4f} bits/char (exact; {self.nats_per_token:.4f} nats/token, "
                f"perplexity {self.perplexity:.3f}) over {self.sequences} sequences, {self.tokens} tokens"
            )
        return (
            f"NELBO <= {self.bits_per_character:.4f} ± {self.bits_per_character_error:.4f} bits/char "
            f"({self.nats_per_token:.4f} nats/token, perplexity <= {self.perplexity:.3f}) over "
            f"{self.sequences} sequences, {self.tokens} tokens, K={self.time_draws} time draws"
        )


@torch.no_grad()
def nelbo_bound(
    network: nn.Module,
    objective: MaskedDiffusion,
    batches: Iterable[Batch],
    mask_id: int,
    *,
    time_draws: int = 8,
    tokens_per_character: float = 1.0,
    seed: int = 0,
    max_batches: int | None = None,
    t_min: float = 1e-5,
) -> LikelihoodBound:
    """Average K stratified time draws t_k = (u + k/K) mod 1 per sequence; the error is that of the draws.

    The standard error treats the validation set as fixed: it measures how far the K-draw average may be
    from the exact NELBO of this set, from the spread of each sequence's K estimates. Times below t_min are
    left out; that interval holds less than t_min of the bound, far below the standard error.
    """
    generator = torch.Generator().manual_seed(seed)
    total_nats, total_tokens, variance, sequences = 0.0, 0, 0.0, 0
    for index, batch in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        size = batch["input_ids"].shape[0]
        offsets = torch.rand(size, generator=generator)  # (B,)
        draws = []
        for k in range(time_draws):
            t = (offsets + k / time_draws) % 1.0
            t = t_min + (1.0 - t_min) * t
            _, nats, tokens = objective.loss_at(network, batch, t, mask_id, generator)
            draws.append(nats.double())
        per_draw = torch.stack(draws)  # (K, B)
        total_nats += per_draw.mean(0).sum().item()
        total_tokens += int(tokens.sum())
        if time_draws > 1:
            variance += (per_draw.var(0, unbiased=True) / time_draws).sum().item()
        sequences += size
    if total_tokens == 0:
        raise ValueError("no tokens to evaluate")
    return LikelihoodBound(
        nats_per_token=total_nats / total_tokens,
        standard_error=math.sqrt(variance) / total_tokens,
        tokens_per_character=tokens_per_character,
        sequences=sequences,
        tokens=total_tokens,
        time_draws=time_draws,
    )
