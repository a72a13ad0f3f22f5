"""The likelihood a model reports: a NELBO bound averaged over time draws, or an exact NLL, per unit.

Numbers are kept in nats per token; `per_unit` attaches the domain's unit (character, residue) and how many
scored tokens stand for one, so every printed and exported number names its unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from ..batch import Batch
from ..process import stratified_uniforms


@dataclass(frozen=True)
class LikelihoodBound:
    """NELBO in nats per scored token with the Monte Carlo standard error of its time draws.

    An autoregressive model fills in the same record with its exact NLL (`exact`, no draws, no error).
    """

    nats_per_token: float
    standard_error: float
    sequences: int
    tokens: int
    time_draws: int
    exact: bool = False
    unit: str = "token"
    """What one position of the domain is called in printed numbers: character, residue, token."""
    tokens_per_unit: float = 1.0
    """Scored tokens per unit (a BPE token covers several characters: fewer than 1)."""

    def per_unit(self, unit: str, tokens_per_unit: float) -> LikelihoodBound:
        return replace(self, unit=unit, tokens_per_unit=tokens_per_unit)

    @property
    def bits_per_unit(self) -> float:
        return self.nats_per_token * self.tokens_per_unit / math.log(2)

    @property
    def bits_per_unit_error(self) -> float:
        return self.standard_error * self.tokens_per_unit / math.log(2)

    @property
    def perplexity(self) -> float:
        """exp(nats per token); for a NELBO an upper bound on the model's perplexity."""
        return math.exp(self.nats_per_token)

    def summary(self) -> str:
        unit = f"bits/{self.unit}"
        if self.exact:
            return (
                f"NLL = {self.bits_per_unit:.4f} {unit} (exact; {self.nats_per_token:.4f} nats/token, "
                f"perplexity {self.perplexity:.3f}) over {self.sequences} sequences, {self.tokens} tokens"
            )
        return (
            f"NELBO <= {self.bits_per_unit:.4f} ± {self.bits_per_unit_error:.4f} {unit} "
            f"({self.nats_per_token:.4f} nats/token, perplexity <= {self.perplexity:.3f}) over "
            f"{self.sequences} sequences, {self.tokens} tokens, K={self.time_draws} time draws"
        )

    def to_json(self) -> dict[str, Any]:
        """Every field, and the bits under keys named after the unit (bits_per_character, bits_per_residue)."""
        return {
            **self.__dict__,
            f"bits_per_{self.unit}": self.bits_per_unit,
            f"bits_per_{self.unit}_error": self.bits_per_unit_error,
            "perplexity": self.perplexity,
        }


TimeDraw = Callable[[Batch, Tensor, torch.Generator], tuple[Tensor, Tensor]]
"""(batch, t (B,), generator) -> (per-sequence nats (B,), scored tokens (B,)) of one draw at times t."""


@torch.no_grad()
def average_time_draws(
    draw: TimeDraw,
    batches: Iterable[Batch],
    *,
    time_draws: int,
    seed: int = 0,
    max_batches: int | None = None,
    t_min: float = 1e-5,
) -> LikelihoodBound:
    """Average K stratified time draws t_k = (u + k/K) mod 1 per sequence; the error is that of the draws.

    The standard error treats the validation set as fixed: it measures how far the K-draw average may be
    from the exact NELBO of this set, from the spread of each sequence's K estimates. Times below t_min are
    left out; that interval holds less than t_min of the bound, far below the standard error.
    """
    if time_draws < 1:
        raise ValueError(f"time_draws must be at least 1, got {time_draws}")
    generator = torch.Generator().manual_seed(seed)
    total_nats, total_tokens, variance, sequences = 0.0, 0, 0.0, 0
    for index, batch in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        times = stratified_uniforms(torch.rand(batch.size, generator=generator), time_draws)  # (B, K)
        draws = []
        for k in range(time_draws):
            nats, tokens = draw(batch, t_min + (1.0 - t_min) * times[:, k], generator)
            draws.append(nats.double())
        per_draw = torch.stack(draws)  # (K, B)
        total_nats += per_draw.mean(0).sum().item()
        total_tokens += int(tokens.sum())
        if time_draws > 1:
            variance += (per_draw.var(0, unbiased=True) / time_draws).sum().item()
        sequences += batch.size
    if total_tokens == 0:
        raise ValueError("no tokens to evaluate")
    return LikelihoodBound(
        nats_per_token=total_nats / total_tokens,
        standard_error=math.sqrt(variance) / total_tokens,
        sequences=sequences,
        tokens=total_tokens,
        time_draws=time_draws,
    )
