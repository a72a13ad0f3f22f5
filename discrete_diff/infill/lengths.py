"""Choosing the lengths of blanks given as ranges.

The likelihood rule: for each candidate combination of lengths, lay the template out in one window as long as the
longest candidate (blanks and the rest of the window masked) and compute the NELBO of the given tokens alone, the
blanks never revealed. That is an upper bound on -log p(given tokens at those positions), the fill marginalised
out, so every candidate is scored on the same tokens in the same window: the candidate with the smallest bound is
the length the model finds most plausible. With the exact denoiser the bound is exact (the NELBO equals the
any-order autoregressive loss) and the rule picks the most likely length. All candidates share their time draws
and masks (common random numbers), so their differences are much less noisy than the bounds themselves.

A range blank with no given token after it cannot be told apart by the likelihood (the window looks the same
for every length); it gets its maximum length. The uniform rule draws each length independently per sample
(protein scaffolds whose motifs may move).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

from ..denoiser import Bidirectional, Denoiser, DenoiserInput
from ..errors import UserInputError
from ..objectives import MaskedDiffusion
from ..process import masked_token_nll, nelbo, stratified_uniforms
from ..templates import TokenTemplate


@dataclass(frozen=True)
class LengthChoice:
    lengths: tuple[int, ...]
    """One length per blank, in template order."""
    scores: dict[tuple[int, ...], float] | None = None
    """NELBO (nats) of the given tokens for each candidate, when the likelihood rule chose."""


@dataclass(frozen=True)
class Scorer:
    """What the likelihood rule needs from a model."""

    network: Denoiser
    objective: MaskedDiffusion
    mask_id: int
    pad_id: int | None = None
    """Fills the window after a template with framing (<eos>), unattended, as in training; else [MASK] does."""


class LengthRule(ABC):
    @abstractmethod
    def choose(
        self, template: TokenTemplate, count: int, scorer: Scorer, generator: torch.Generator
    ) -> list[LengthChoice]:
        """Blank lengths for `count` samples of the template."""


def trailing_blanks(template: TokenTemplate) -> set[int]:
    """Indices (among the blanks) of blanks with no given token after them, framing included."""
    if template.tail:
        return set()
    blanks, index, seen_given = set(), len(template.blanks), False
    for segment in reversed(template.segments):
        if isinstance(segment, tuple):
            seen_given = seen_given or len(segment) > 0
        else:
            index -= 1
            if not seen_given:
                blanks.add(index)
    return blanks


@torch.no_grad()
def given_token_nelbo(
    template: TokenTemplate,
    candidates: list[tuple[int, ...]],
    scorer: Scorer,
    time_draws: int,
    generator: torch.Generator,
) -> Tensor:
    """(N,) NELBO in nats of the given tokens, blanks marginalised, for each candidate laid out in a common window.

    The j-th given token is masked at the same times in every candidate (common random numbers).
    """
    width = max(template.length(c) for c in candidates)
    filler = scorer.mask_id if scorer.pad_id is None or not template.tail else scorer.pad_id
    tokens = torch.full((len(candidates), width), filler, dtype=torch.long)  # (N, W)
    attention = torch.zeros(len(candidates), width, dtype=torch.bool)  # (N, W)
    scored = torch.zeros(len(candidates), width, dtype=torch.bool)  # (N, W)
    for row, lengths in enumerate(candidates):
        ids, given = template.layout(lengths, scorer.mask_id)
        given[: len(template.head)] = False  # framing is never masked in training: not scored
        given[len(ids) - len(template.tail) :] = False
        tokens[row, : len(ids)], scored[row, : len(ids)] = ids, given
        attention[row] = True if filler == scorer.mask_id else torch.arange(width) < len(ids)
    schedule = scorer.objective.schedule
    times = 1e-5 + (1.0 - 1e-5) * stratified_uniforms(torch.rand((), generator=generator), time_draws)  # (K,)
    totals = torch.zeros(len(candidates), dtype=torch.float64)
    for k in range(time_draws):
        t = times[k].expand(len(candidates))  # (N,) the same time for every candidate
        u = torch.rand(int(scored[0].sum()), generator=generator)  # (G,) one draw per given token
        masked = torch.zeros_like(scored)
        masked[scored] = (u < schedule.mask_probability(t[:1])).repeat(len(candidates))
        xt = tokens.masked_fill(masked, scorer.mask_id)  # (N, W)
        inputs = DenoiserInput(xt, Bidirectional(attention), t=t, score_at=masked)
        token_nll = masked_token_nll(scorer.network(inputs), tokens, masked, scorer.mask_id)  # (N, W)
        totals += nelbo(token_nll, masked, t, schedule, scored).per_sequence.double()
    return totals / time_draws


class LikelihoodLength(LengthRule):
    """The candidate whose given tokens have the smallest NELBO (see the module docstring); one choice for all."""

    def __init__(self, time_draws: int = 16, max_candidates: int = 512) -> None:
        self.time_draws, self.max_candidates = time_draws, max_candidates

    def choose(
        self, template: TokenTemplate, count: int, scorer: Scorer, generator: torch.Generator
    ) -> list[LengthChoice]:
        trailing = trailing_blanks(template)
        maxima = [b.maximum for b in template.blanks]
        candidates = sorted(
            {tuple(maxima[i] if i in trailing else n for i, n in enumerate(c)) for c in template.candidates()}
        )
        if len(candidates) == 1:
            return [LengthChoice(candidates[0])] * count
        if len(candidates) > self.max_candidates:
            raise UserInputError(
                f"{len(candidates)} combinations of blank lengths to score (more than {self.max_candidates}): "
                "narrow the ranges or give some blanks a fixed length"
            )
        nelbo = given_token_nelbo(template, candidates, scorer, self.time_draws, generator)
        scores = dict(zip(candidates, nelbo.tolist(), strict=True))
        return [LengthChoice(candidates[int(nelbo.argmin())], scores)] * count


class UniformLength(LengthRule):
    """Each sample draws each blank's length uniformly from its range (motifs free to move between samples)."""

    def choose(
        self, template: TokenTemplate, count: int, scorer: Scorer, generator: torch.Generator
    ) -> list[LengthChoice]:
        draws = [
            torch.randint(b.minimum, b.maximum + 1, (count,), generator=generator).tolist() for b in template.blanks
        ]
        return [LengthChoice(tuple(column)) for column in zip(*draws, strict=True)]
