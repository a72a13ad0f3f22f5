"""The unknown-length rule against exact toy distributions: its score is -log p(given tokens) for the exact
denoiser (less log p(length) for whole sequences), and it picks the most probable length whichever length the
distribution prefers."""

import itertools
import math
from dataclasses import replace

import pytest
import torch
from toy import ExactDenoiser, ToyDistribution

from discrete_diff.denoiser import DenoiserInput, select_scored
from discrete_diff.errors import UserInputError
from discrete_diff.infill import (
    Blank,
    LengthPrior,
    LikelihoodLength,
    Scorer,
    TokenTemplate,
    UniformLength,
    given_token_nelbo,
)
from discrete_diff.objectives import MaskedDiffusion

TEMPLATE = TokenTemplate(((0,), Blank(1, 2), (1,)))  # "0 [1 or 2 blanks] 1" in a window of 4


def toy_preferring(position: int) -> ToyDistribution:
    """Length-4 sequences where x0 = 0 is much more often followed by 1 at `position` than elsewhere."""
    toy = ToyDistribution(vocab=3, length=4, seed=5)
    boost = (toy.sequences[:, 0] == 0) & (toy.sequences[:, position] == 1)
    probs = toy.probs * torch.where(boost, 20.0, 1.0).double()
    toy.probs = probs / probs.sum()
    return toy


def marginal(toy: ToyDistribution, where: dict[int, int]) -> float:
    keep = torch.ones(len(toy.sequences), dtype=torch.bool)
    for position, value in where.items():
        keep &= toy.sequences[:, position] == value
    return float(toy.probs[keep].sum())


def scorer(toy):
    return Scorer(ExactDenoiser(toy), MaskedDiffusion(), toy.mask_id)


@pytest.mark.parametrize("position", [2, 3])
def test_the_rule_picks_the_most_likely_length(position):
    toy = toy_preferring(position)
    truth = {(1,): marginal(toy, {0: 0, 2: 1}), (2,): marginal(toy, {0: 0, 3: 1})}
    best = max(truth, key=truth.get)
    assert best == (position - 1,)  # the toy was built to prefer this length
    choices = LikelihoodLength(time_draws=32).choose(TEMPLATE, 3, scorer(toy), torch.Generator().manual_seed(0))
    assert [c.lengths for c in choices] == [best] * 3
    assert set(choices[0].scores) == {(1,), (2,)}


def test_the_score_is_the_negative_log_probability_of_the_given_tokens():
    toy = toy_preferring(3)
    generator = torch.Generator().manual_seed(1)
    # Each estimate averages 200 stratified times; single times have a heavy tail (weight 1/t at small t).
    draws = torch.stack([given_token_nelbo(TEMPLATE, [(1,), (2,)], scorer(toy), 200, generator) for _ in range(30)])
    mean, error = draws.mean(0), draws.std(0) / len(draws) ** 0.5
    truth = -torch.tensor([marginal(toy, {0: 0, 2: 1}), marginal(toy, {0: 0, 3: 1})]).log()
    assert torch.all((mean - truth).abs() < 4 * error), (mean, truth, error)


def test_a_blank_with_nothing_after_it_gets_its_longest_length():
    toy = toy_preferring(3)
    template = TokenTemplate(((0,), Blank(1, 3)))
    choices = LikelihoodLength().choose(template, 1, scorer(toy), torch.Generator())
    assert choices[0].lengths == (3,) and choices[0].scores is None


def test_uniform_lengths_vary_within_their_ranges():
    template = TokenTemplate((Blank(2, 5), (4, 4), Blank(0, 3)))
    choices = UniformLength().choose(template, 200, scorer(toy_preferring(3)), torch.Generator().manual_seed(0))
    firsts, seconds = {c.lengths[0] for c in choices}, {c.lengths[1] for c in choices}
    assert firsts == {2, 3, 4, 5} and seconds == {0, 1, 2, 3}


def test_too_many_combinations_are_refused():
    template = TokenTemplate((Blank(1, 30), (1,), Blank(1, 30), (1,)))
    with pytest.raises(UserInputError, match="900 combinations"):
        LikelihoodLength(max_candidates=512).choose(template, 1, scorer(toy_preferring(3)), torch.Generator())


class FramedToy(torch.nn.Module):
    """Whole sequences <bos> body <eos> whose body length n has its own law: p(n) p(body | n), enumerated.

    Rows are padded to a common width; the denoiser reads n from the attended positions, as a real one does."""

    time_conditioned = False
    VOCAB = 3
    BOS, EOS, PAD, MASK = 3, 4, 5, 6

    def __init__(self, lengths=(2, 3, 4), seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.bodies = {}
        for n in lengths:
            sequences = torch.tensor(list(itertools.product(range(self.VOCAB), repeat=n)))
            weights = torch.rand(len(sequences), generator=generator, dtype=torch.float64) ** 4
            self.bodies[n] = (sequences, weights / weights.sum())

    def marginal(self, n: int, position: int, value: int) -> float:
        sequences, probs = self.bodies[n]
        return float(probs[sequences[:, position] == value].sum())

    def forward(self, inputs: DenoiserInput) -> torch.Tensor:
        ids, attended = inputs.ids, inputs.attention.padding
        logits = torch.full((*ids.shape, self.MASK + 1), -math.inf)
        for row in range(len(ids)):
            n = int(attended[row].sum()) - 2
            sequences, probs = self.bodies[n]
            body = ids[row, 1 : n + 1]
            agree = ((sequences == body) | (body == self.MASK)).all(-1)  # (N,)
            joint = torch.einsum(
                "s,slv->lv", probs * agree, torch.nn.functional.one_hot(sequences, self.VOCAB).double()
            )
            logits[row, 1 : n + 1, : self.VOCAB] = (joint / joint.sum(-1, keepdim=True)).log().float()
        return select_scored(logits, inputs)


def test_whole_sequences_get_the_posterior_mode_of_their_length():
    """Template <bos> [0-2] 1 [1] <eos>: one given token, so each candidate's NELBO is exactly -log p(x = 1 | n)
    (m = 1 of 1 masked), and the rule's score must be that less log p(n) from the training lengths."""
    toy = FramedToy()
    template = TokenTemplate((Blank(0, 2), (1,), Blank(1, 1)), head=(toy.BOS,), tail=(toy.EOS,))
    likelihood = {a: toy.marginal(a + 2, a, 1) for a in range(3)}
    histogram = {"length": [2, 3, 4], "count": [1, 2, 1]}
    prior = LengthPrior.from_histogram(histogram, longest=6)
    posterior = {a: likelihood[a] * math.exp(prior.log_prob(a + 2)) for a in range(3)}
    assert max(posterior, key=posterior.get) != max(likelihood, key=likelihood.get)  # the prior changes the choice
    scorer = Scorer(toy, MaskedDiffusion(), toy.MASK, toy.PAD, prior)
    choice = LikelihoodLength(time_draws=2).choose(template, 1, scorer, torch.Generator().manual_seed(0))[0]
    assert choice.lengths == (max(posterior, key=posterior.get), 1) and choice.length_prior
    for (a, _), score in choice.scores.items():
        assert score == pytest.approx(-math.log(posterior[a]), abs=1e-5)
    without = LikelihoodLength(time_draws=2).choose(template, 1, replace(scorer, length_prior=None), torch.Generator())
    assert without[0].lengths == (max(likelihood, key=likelihood.get), 1) and not without[0].length_prior


def test_the_length_prior_counts_every_training_length_and_half_a_count_for_the_rest():
    prior = LengthPrior.from_histogram({"length": [3, 5, 9], "count": [4, 2, 1]}, longest=8)  # 9 is too long
    total = 4 + 2 + 0.5 * 8
    assert prior.log_prob(3) == pytest.approx(math.log(4.5 / total))
    assert prior.log_prob(4) == pytest.approx(math.log(0.5 / total))
    assert sum(math.exp(prior.log_prob(n)) for n in range(1, 9)) == pytest.approx(1.0)
    assert LengthPrior.from_histogram(None, longest=8) is None
