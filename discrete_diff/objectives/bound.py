"""The likelihood a model reports: a NELBO bound averaged over masking-level draws, or an exact NLL, per unit.

Numbers are kept in nats per token; `per_unit` attaches the domain's unit (character, residue) and how many
scored tokens stand for one, so every printed and exported number names its unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any


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

    An autoregressive model fills in the same record with its exact NLL (`exact`, no draws, an error of 0 that is
    never printed). `estimate.estimate_likelihood` fills it in for every objective.
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
    orders: int = 0
    """For the bound importance-weighted over unmasking orders (`order_bound`): orders per sequence (its error: the
    jackknife's over them); 0 for the NELBO."""

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
        if self.orders:
            error = f" ± {self.bits_per_unit_error:.4f}" if self.bits_per_unit_error is not None else ""
            return (
                f"bound <= {self.bits_per_unit:.4f}{error} {unit} ({self.nats_per_token:.4f} nats/token, "
                f"perplexity <= {self.perplexity:.3f}) over {self.sequences} sequences, {self.tokens} tokens; "
                f"importance-weighted over K={self.orders} unmasking orders per sequence"
                + ("; ±: jackknife over the orders" if error else "")
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
