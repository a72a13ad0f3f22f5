"""Choosing the lengths of blanks given as ranges.

The likelihood rule: for each candidate combination of lengths, lay the template out in its window (window.py:
proteins as whole sequences, text in a window as long as the longest candidate) and compute the NELBO of the
given tokens alone, the blanks never revealed. That is an upper bound on -log p(given tokens at those positions),
the fill marginalised out. For a template that is a whole sequence (it ends with framing, as proteins do) the
candidates differ in total length too, so the rule adds -log p(length) from the lengths the model was trained on
(the histogram a checkpoint keeps): the candidate with the smallest NELBO - log p(length) is the posterior mode of
the blank lengths given the template (with the bound in place of the exact likelihood). Text windows are pieces
of a longer text: their length is not the text's, and no prior applies. With the exact denoiser the bound is
exact and the rule picks the most probable lengths. All candidates share their draws and masks (common random
numbers), so their differences are much less noisy than the bounds themselves.

A range blank with no given token after it cannot be told apart by the likelihood (the window looks the same
for every length); it gets its maximum length. The uniform rule draws each length independently per sample
(protein scaffolds whose motifs may move).

The bound marginalises the blanks by keeping them [MASK] at every time: it needs the absorbing process. A
uniform-state model has no such state (noise in a blank looks like text at every time but t = 1, and its network
sees one time for all positions), so infilling refuses to score its blank lengths (`scored_blanks`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ..batch import Batch
from ..denoiser import Denoiser
from ..errors import UserInputError
from ..objectives import MaskedDiffusion
from ..process import draw_masked_count, stratified_uniforms
from ..templates import Blank, TokenTemplate
from .window import stack_rows, window_row


@dataclass(frozen=True)
class LengthChoice:
    lengths: tuple[int, ...]
    """One length per blank, in template order."""
    scores: dict[tuple[int, ...], float] | None = None
    """For each candidate, when the likelihood rule chose: the NELBO (nats) of the given tokens, less
    log p(length) when `length_prior` (the negative log posterior, up to a constant)."""
    length_prior: bool = False
    """Whether the scores include the length prior (whole sequences of a model that stores its lengths)."""


@dataclass(frozen=True)
class LengthPrior:
    """p(length) of whole sequences, from the lengths of the training sequences.

    Each length 1..`longest` gets its count plus one half: a length no training sequence had is unlikely, not
    impossible (a template may ask for lengths the training set lacks, and then the likelihood decides).
    """

    counts: Mapping[int, int]
    longest: int

    @classmethod
    def from_histogram(cls, histogram: Mapping[str, list[int]] | None, longest: int) -> LengthPrior | None:
        """From a checkpoint's `lengths` entry ({"length": [...], "count": [...]}); None without one."""
        if not histogram:
            return None
        return cls(dict(zip(histogram["length"], histogram["count"], strict=True)), longest)

    def log_prob(self, length: int) -> float:
        total = sum(c for n, c in self.counts.items() if 1 <= n <= self.longest) + 0.5 * self.longest
        return math.log((self.counts.get(length, 0) + 0.5) / total)


@dataclass(frozen=True)
class Scorer:
    """What the likelihood rule needs from a model."""

    network: Denoiser
    objective: MaskedDiffusion
    mask_id: int
    pad_id: int | None = None
    """Pads rows of different lengths (not attended, as in training); [MASK] does when None."""
    length_prior: LengthPrior | None = None
    """p(length) of whole sequences (templates ending with framing); None: every length equally likely."""
    label: int | None = None
    """The label id a labelled model scores under (the fill's label); None: the model's unconditional pass."""


class LengthRule(ABC):
    @abstractmethod
    def choose(
        self, template: TokenTemplate, count: int, scorer: Scorer, generator: torch.Generator
    ) -> list[LengthChoice]:
        """Blank lengths for `count` samples of the template."""

    def scored_blanks(self, template: TokenTemplate) -> list[Blank]:
        """The range blanks whose length this rule chooses by the masked-diffusion bound of the given tokens."""
        return []


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
    """(N,) NELBO in nats of the given tokens, blanks marginalised, for each candidate laid out in its window.

    The bound of `MaskedDiffusion.bound_at` with the given tokens as the scored ones: m of the G given tokens
    masked, m uniform on 1..G (K stratified draws), weight G / m. The same m given tokens (the j-th given token
    of every candidate alike) are masked in every candidate: common random numbers.
    """
    rows = [window_row(template, lengths, scorer.mask_id) for lengths in candidates]
    pad = scorer.mask_id if scorer.pad_id is None else scorer.pad_id
    tokens, scored, attended = stack_rows(rows, pad)  # (N, W) each
    scored[:, : len(template.head)] = False  # framing is never masked in training: not scored
    for row, (ids, _) in enumerate(rows):
        scored[row, len(ids) - len(template.tail) :] = False
    labels = None if scorer.label is None else torch.full((len(candidates),), scorer.label, dtype=torch.long)
    batch = Batch(tokens, attended, scored, labels)
    given = int(scored[0].sum())
    u = stratified_uniforms(torch.rand((), generator=generator, dtype=torch.float64), time_draws)  # (K,)
    totals = torch.zeros(len(candidates), dtype=torch.float64)
    for k in range(time_draws):
        shared, level = draw_masked_count(torch.ones(1, given, dtype=torch.bool), u[k : k + 1], generator)  # (1, G)
        masked = torch.zeros_like(scored)
        masked[scored] = shared.expand(len(candidates), -1).reshape(-1)
        draw = scorer.objective.bound_of_masks(scorer.network, batch, masked, level.expand(len(candidates)),
                                               scorer.mask_id)  # fmt: skip
        totals += draw.per_sequence
    return totals / time_draws


class LikelihoodLength(LengthRule):
    """The candidate with the smallest NELBO of its given tokens, less log p(length) for whole sequences: the
    posterior mode (see the module docstring); one choice for all samples."""

    def __init__(self, time_draws: int = 16, max_candidates: int = 512) -> None:
        self.time_draws, self.max_candidates = time_draws, max_candidates

    def candidates(self, template: TokenTemplate) -> list[tuple[int, ...]]:
        """The combinations of blank lengths to score, blanks with nothing given after them at their longest."""
        trailing = trailing_blanks(template)
        maxima = [b.maximum for b in template.blanks]
        return sorted(
            {tuple(maxima[i] if i in trailing else n for i, n in enumerate(c)) for c in template.candidates()}
        )

    def scored_blanks(self, template: TokenTemplate) -> list[Blank]:
        if len(self.candidates(template)) == 1:
            return []
        trailing = trailing_blanks(template)
        return [blank for i, blank in enumerate(template.blanks) if not blank.fixed and i not in trailing]

    def choose(
        self, template: TokenTemplate, count: int, scorer: Scorer, generator: torch.Generator
    ) -> list[LengthChoice]:
        candidates = self.candidates(template)
        if len(candidates) == 1:
            return [LengthChoice(candidates[0])] * count
        if len(candidates) > self.max_candidates:
            raise UserInputError(
                f"{len(candidates)} combinations of blank lengths to score (more than {self.max_candidates}): "
                "narrow the ranges or give some blanks a fixed length"
            )
        score = given_token_nelbo(template, candidates, scorer, self.time_draws, generator)
        prior = scorer.length_prior if template.tail else None  # only a whole sequence's length has a prior
        if prior is not None:
            framing = len(template.head) + len(template.tail)
            lengths = [template.length(c) - framing for c in candidates]
            score = score - torch.tensor([prior.log_prob(n) for n in lengths], dtype=score.dtype)
        scores = dict(zip(candidates, score.tolist(), strict=True))
        return [LengthChoice(candidates[int(score.argmin())], scores, prior is not None)] * count


class UniformLength(LengthRule):
    """Each sample draws each blank's length uniformly from its range (motifs free to move between samples)."""

    def choose(
        self, template: TokenTemplate, count: int, scorer: Scorer, generator: torch.Generator
    ) -> list[LengthChoice]:
        draws = [
            torch.randint(b.minimum, b.maximum + 1, (count,), generator=generator).tolist() for b in template.blanks
        ]
        return [LengthChoice(tuple(column)) for column in zip(*draws, strict=True)]
