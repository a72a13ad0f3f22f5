"""The unknown-length rule against exact toy distributions: its score is -log p(given tokens) for the exact
denoiser, and it picks the most likely length whichever length the distribution prefers."""

import pytest
import torch
from toy import ExactDenoiser, ToyDistribution

from discrete_diff.errors import UserInputError
from discrete_diff.infill import Blank, LikelihoodLength, Scorer, TokenTemplate, UniformLength, given_token_nelbo
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
