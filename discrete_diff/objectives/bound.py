"""The likelihood a model reports: a NELBO bound averaged over masking-level draws, or an exact NLL, per unit.

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
    """NELBO in nats per scored token with the Monte Carlo standard error of its masking-level draws.

    The bound integrates masking levels over all of [0, 1] (`MaskedDiffusion.bound_at`), so it bounds -log p of
    the sampler that starts from all-[MASK], whatever the schedule. `standard_error` (the ± printed) is the Monte
    Carlo error of the estimate of this data set's NELBO: with K >= 2 draws per sequence, from the spread of each
    sequence's K draws (`error_from` = "draws"; stratified draws make this an overestimate); with K = 1, from the
    spread across sequences around the common rate (`error_from` = "sequences": it also counts how sequences
    differ, so it tends to overestimate); with one draw of one sequence there is none (None). Neither covers how
    far this data set is from other data. When a few tokens cost far more than the rest (heavy tails), a run
    over few sequences and draws tends to understate it (tests/test_likelihood_estimate.py measures how much).

    An autoregressive model fills in the same record with its exact NLL (`exact`, no draws, no error).
    """

    nats_per_token: float
    standard_error: float | None
    sequences: int
    tokens: int
    time_draws: int
    exact: bool = False
    unit: str = "token"
    """What one position of the domain is called in printed numbers: character, residue, token."""
    tokens_per_unit: float = 1.0
    """Scored tokens per unit (a BPE token covers several characters: fewer than 1)."""
    error_from: str = "draws"
    """What the standard error was estimated from: "draws", "sequences", or "" (no estimate)."""

    def per_unit(self, unit: str, tokens_per_unit: float) -> LikelihoodBound:
        return replace(self, unit=unit, tokens_per_unit=tokens_per_unit)

    @property
    def bits_per_unit(self) -> float:
        return self.nats_per_token * self.tokens_per_unit / math.log(2)

    @property
    def bits_per_unit_error(self) -> float | None:
        if self.standard_error is None:
            return None
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
        draws = f"K={self.time_draws} draw{'s' if self.time_draws > 1 else ''} per sequence"
        if self.bits_per_unit_error is None:
            error, source = "", "; no error estimate with 1 draw of 1 sequence"
        else:
            error = f" ± {self.bits_per_unit_error:.4f}"
            source = {
                "draws": "; ±: standard error of the draws",
                "sequences": "; ±: estimated across sequences (tends to overestimate)",
            }[self.error_from]
        return (
            f"NELBO <= {self.bits_per_unit:.4f}{error} {unit} ({self.nats_per_token:.4f} nats/token, "
            f"perplexity <= {self.perplexity:.3f}) over {self.sequences} sequences, {self.tokens} tokens; "
            f"masking levels integrated over [0, 1], {draws}{source}"
        )

    def to_json(self) -> dict[str, Any]:
        """Every field, and the bits under keys named after the unit (bits_per_character, bits_per_residue)."""
        return {
            **self.__dict__,
            f"bits_per_{self.unit}": self.bits_per_unit,
            f"bits_per_{self.unit}_error": self.bits_per_unit_error,
            "perplexity": self.perplexity,
        }


Draw = Callable[[Batch, Tensor, torch.Generator], tuple[Tensor, Tensor]]
"""(batch, u (B,) in [0, 1), generator) -> (per-sequence nats (B,), scored tokens (B,)) of one draw."""


@torch.no_grad()
def average_time_draws(
    draw: Draw,
    batches: Iterable[Batch],
    *,
    time_draws: int,
    seed: int = 0,
    max_batches: int | None = None,
) -> LikelihoodBound:
    """Average K draws per sequence at stratified u_k = (u + k/K) mod 1, u ~ U(0, 1) drawn per sequence.

    Each draw is unbiased for the sequence's NELBO, and the K draws of a sequence cover [0, 1) evenly (for the
    masked-diffusion bound: the number of masked tokens). The standard error is described in `LikelihoodBound`.
    """
    if time_draws < 1:
        raise ValueError(f"time_draws must be at least 1, got {time_draws}")
    generator = torch.Generator().manual_seed(seed)
    means, counts, within = [], [], 0.0
    for index, batch in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        u = stratified_uniforms(torch.rand(batch.size, generator=generator, dtype=torch.float64), time_draws)  # (B, K)
        draws = []
        for k in range(time_draws):
            nats, tokens = draw(batch, u[:, k], generator)
            draws.append(nats.double().cpu())
        per_draw = torch.stack(draws)  # (K, B)
        means.append(per_draw.mean(0))
        counts.append(tokens.cpu().double())
        if time_draws > 1:
            within += (per_draw.var(0, unbiased=True) / time_draws).sum().item()
    if not means or int(torch.cat(counts).sum()) == 0:
        raise ValueError("no tokens to evaluate")
    nats, tokens = torch.cat(means), torch.cat(counts)  # (N,), (N,)
    total_tokens = int(tokens.sum())
    rate = float(nats.sum()) / total_tokens
    if time_draws > 1:
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
