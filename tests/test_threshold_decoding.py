"""Adaptive parallel decoding (ThresholdUnmasking) on exactly known toys and a denoiser whose confidences are set by
hand: threshold 1.0 is one-at-a-time confidence decoding, threshold 0 is one call drawing every blank from its
conditional alone (measurably not the toy's law), and in between each call reveals exactly the blanks above the
threshold (or the surest one), at most the cap, after the filters."""

import argparse
from dataclasses import dataclass, field
from itertools import pairwise

import pytest
import torch
from toy import ExactDenoiser, MarkovChain, ToyDistribution, log_probs_as_logits

from discrete_diff.commands.sampling_options import add_sampling_arguments, settings_from_args
from discrete_diff.denoiser import DenoiserInput, select_scored
from discrete_diff.errors import InvalidArgument, UserInputError
from discrete_diff.sampling import (
    BanTokens,
    ConfidenceUnmasking,
    Spans,
    Temperature,
    ThresholdUnmasking,
    run_sampler,
)
from discrete_diff.schedules import LogLinearSchedule

pytestmark = pytest.mark.usefixtures("one_thread")

COUNT = 20000
# 27 outcomes, 20,000 draws: an exact sampler's expected TV is about 0.012 (as in test_exactness).
TV_BOUND = 0.03


def sample(network, tokens, strategy, mask_id, seed=0, steps=1, **kwargs):
    return run_sampler(
        network, tokens, mask_id=mask_id, strategy=strategy, num_steps=steps, schedule=LogLinearSchedule(),
        generator=torch.Generator().manual_seed(seed), **kwargs,
    )  # fmt: skip


def prompts(toy, rows: int, seed: int = 0) -> torch.Tensor:
    """Rows of blanks with a few given tokens; the first row all blank."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, toy.vocab, (rows, toy.length), generator=generator)
    blanks = torch.rand(rows, toy.length, generator=generator) < 0.7
    blanks[0] = True
    return tokens.masked_fill(blanks, toy.mask_id)


def test_threshold_one_is_one_at_a_time_confidence_decoding():
    """Nothing passes 1.0: each call reveals the surest blank, the same draws as confidence decoding with L steps."""
    toy = ToyDistribution(vocab=3, length=4, seed=1)
    tokens = prompts(toy, 500)
    confident = sample(ExactDenoiser(toy), tokens, ConfidenceUnmasking(), toy.mask_id, steps=toy.length)
    threshold = sample(ExactDenoiser(toy), tokens, ThresholdUnmasking(1.0), toy.mask_id)
    assert torch.equal(threshold.tokens, confident.tokens)
    assert threshold.network_calls == confident.network_calls == toy.length  # the all-blank row: L calls


def product_of_marginals(toy: ToyDistribution) -> torch.Tensor:
    """(N,) each sequence's probability when every position is drawn alone from p(x^i | nothing given)."""
    marginals = toy.conditionals(torch.full((1, toy.length), toy.mask_id))[0]  # (L, V)
    return marginals.gather(1, toy.sequences.T).prod(0)  # (N,)


@pytest.mark.parametrize("threshold, law", [(1.0, "toy"), (0.0, "product")])
def test_the_law_each_end_of_the_threshold_samples(threshold, law):
    """1.0 reproduces the toy (exact conditionals, the chain rule); 0 draws the product of the marginals in one
    call, which is far from the toy: the ancestral law is not what a low threshold samples."""
    toy = ToyDistribution(vocab=3, length=3, seed=3)
    product = product_of_marginals(toy)
    assert 0.5 * float((product - toy.probs).abs().sum()) > 0.2  # the two laws are far apart
    result = sample(ExactDenoiser(toy), torch.full((COUNT, 3), toy.mask_id), ThresholdUnmasking(threshold), 3)
    assert result.network_calls == (toy.length if threshold == 1.0 else 1)
    counts = torch.bincount(toy.index(result.tokens), minlength=len(toy.probs)).double() / COUNT
    expected = toy.probs if law == "toy" else product
    assert 0.5 * float((counts - expected).abs().sum()) < TV_BOUND


CONFIDENCES = [0.95, 0.5, 0.97, 0.6, 0.91, 0.3]  # top probability at each position, whatever is revealed
VOCAB = 4  # position i's top token is i % VOCAB; [MASK] is VOCAB


class FixedConfidence(torch.nn.Module):
    """The same distribution at every call: CONFIDENCES[i] on token i % VOCAB, the rest spread evenly. Declared
    time-conditioned so that it is called at every step, and notes each call's time."""

    time_conditioned = True

    def __init__(self) -> None:
        super().__init__()
        top = torch.tensor(CONFIDENCES, dtype=torch.float64)  # (L,)
        probs = ((1 - top) / (VOCAB - 1))[:, None].repeat(1, VOCAB)  # (L, V)
        probs[torch.arange(len(top)), torch.arange(len(top)) % VOCAB] = top
        self.logits = log_probs_as_logits(probs)  # (L, V + 1)
        self.times: list[float] = []

    def forward(self, inputs: DenoiserInput) -> torch.Tensor:
        self.times += inputs.t.tolist()
        return select_scored(self.logits.expand(*inputs.ids.shape, -1), inputs)


def reveal_order(strategy: ThresholdUnmasking, seed: int = 0) -> tuple[list[set[int]], torch.Tensor, list[float]]:
    """(positions each call revealed, final tokens (L,), the times the calls saw) for one all-blank row."""
    frames = []
    network = FixedConfidence()
    tokens = torch.full((1, len(CONFIDENCES)), VOCAB)
    result = sample(network, tokens, strategy, VOCAB, seed=seed, on_step=lambda x, n, t: frames.append(x[0] == VOCAB))
    revealed = [set(torch.nonzero(before & ~after)[:, 0].tolist()) for before, after in pairwise(frames)]
    assert result.network_calls == len(revealed) == len(network.times)
    return revealed, result.tokens[0], network.times


@pytest.mark.parametrize(
    "threshold, cap, order",
    [
        (0.9, None, [{0, 2, 4}, {3}, {1}, {5}]),  # none above 0.9 after the first call: the surest one each time
        (0.9, 2, [{0, 2}, {4}, {3}, {1}, {5}]),  # the cap takes the surest two of the three first
        (0.55, None, [{0, 2, 3, 4}, {1}, {5}]),
        (0.0, 4, [{0, 2, 3, 4}, {1, 5}]),
        (1.0, None, [{2}, {0}, {4}, {3}, {1}, {5}]),
    ],
)
def test_each_call_reveals_the_blanks_above_the_threshold_or_the_surest(threshold, cap, order):
    revealed, tokens, times = reveal_order(ThresholdUnmasking(threshold, cap, argmax=True))
    assert revealed == order
    assert tokens.tolist() == [i % VOCAB for i in range(len(CONFIDENCES))]  # argmax: the top tokens
    # Each call sees the time whose masking probability is the share still masked (t = share, log-linear).
    still_masked = [len(CONFIDENCES) - sum(map(len, order[:k])) for k in range(len(order))]
    assert times == pytest.approx([n / len(CONFIDENCES) for n in still_masked])
    # Drawn tokens: the same reveal order (the confidences do not depend on the draws), not always the top token.
    draws = [reveal_order(ThresholdUnmasking(threshold, cap), seed) for seed in range(20)]
    assert all(drawn[0] == order for drawn in draws)
    assert any(drawn[1][1] != 1 for drawn in draws)  # position 1's top token has probability 0.5


@dataclass(frozen=True)
class Recording(ThresholdUnmasking):
    """Threshold steps that keep what each step saw and did: (tokens, log-probabilities, new tokens)."""

    seen: list = field(default_factory=list)

    def step(self, tokens, log_probs, plan, context):
        updated = super().step(tokens, log_probs, plan, context)
        self.seen.append((tokens.clone(), log_probs.clone(), updated.clone()))
        return updated


def expected_reveals(tokens, log_probs, threshold, cap, mask_id) -> torch.Tensor:
    """(B, L) bool, row by row: the blanks whose top probability is above the threshold, else the surest one,
    the surest `cap` of them when more pass."""
    top = log_probs.max(-1).values.exp()  # (B, L)
    expected = torch.zeros_like(tokens, dtype=torch.bool)
    for row in range(len(tokens)):
        blanks = torch.nonzero(tokens[row] == mask_id)[:, 0].tolist()
        ranked = sorted(blanks, key=lambda i: -float(top[row, i]))
        passing = [i for i in ranked if top[row, i] > threshold] or ranked[:1]
        expected[row, passing[: cap or len(passing)]] = True
    return expected


@pytest.mark.parametrize("threshold, cap", [(0.8, None), (0.5, 3), (0.9, 2)])
def test_on_a_markov_chain_every_call_reveals_what_passes_after_the_filters(threshold, cap):
    """Confidences that change as tokens are revealed, a banned token and a sharpening temperature: each step
    reveals exactly the expected blanks of the distribution it saw, which the filters shaped."""
    chain = MarkovChain(vocab=4, length=16, seed=2, rare=0.05)
    strategy = Recording(threshold, cap)
    tokens = torch.full((8, chain.length), chain.mask_id)
    tokens[:, ::5] = chain.sample(8, torch.Generator().manual_seed(1))[:, ::5]  # given tokens: pinned
    filters = [BanTokens([3]), Temperature(0.7)]
    result = sample(ExactDenoiser(chain), tokens, strategy, chain.mask_id, filters=filters)
    assert torch.equal(result.tokens[:, ::5], tokens[:, ::5])
    assert not (result.tokens == chain.mask_id).any()
    for before, log_probs, after in strategy.seen:
        assert torch.isneginf(log_probs[..., 3]).all()  # the step saw the filtered distribution
        revealed = (before == chain.mask_id) & (after != chain.mask_id)
        assert torch.equal(revealed, expected_reveals(before, log_probs, threshold, cap, chain.mask_id))
    assert result.network_calls == len(strategy.seen) < 12  # fewer calls than the 12 blanks
    assert any(((b == chain.mask_id) & (a != chain.mask_id)).sum(-1).max() > 1 for b, _, a in strategy.seen)


@pytest.mark.parametrize("ban", [True, False])
def test_given_tokens_never_change_and_a_banned_token_is_never_drawn(ban):
    toy = ToyDistribution(vocab=3, length=4, seed=1)
    tokens = prompts(toy, 2000, seed=3)
    given = tokens != toy.mask_id
    filters = [BanTokens([1])] if ban else []
    for strategy in (ThresholdUnmasking(0.6), Spans(ThresholdUnmasking(0.6), span_length=2)):
        result = sample(ExactDenoiser(toy), tokens, strategy, toy.mask_id, filters=filters)
        assert torch.equal(result.tokens[given], tokens[given])
        assert (result.tokens[~given] == 1).any() != ban  # unbanned, token 1 is drawn: the ban is what stops it


def test_spans_fill_left_to_right_within_each_span():
    """Threshold 0 inside spans of 2: one call per span, the second span untouched until the first is done."""
    toy = ToyDistribution(vocab=3, length=4, seed=1)
    frames = []
    result = sample(
        ExactDenoiser(toy), torch.full((50, 4), toy.mask_id), Spans(ThresholdUnmasking(0.0), span_length=2),
        toy.mask_id, on_step=lambda x, n, t: frames.append(x == toy.mask_id),
    )  # fmt: skip
    assert result.network_calls == 2
    assert [frame.all(0).tolist() for frame in frames] == [[True] * 4, [False, False, True, True], [False] * 4]
    assert Spans(ThresholdUnmasking(1.0), span_length=2).follows_num_steps is False
    assert sample(ExactDenoiser(toy), torch.full((50, 4), 3), Spans(ThresholdUnmasking(1.0), 2), 3).network_calls == 4


def parse(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sampling_arguments(parser)
    return parser.parse_args(list(flags))


def test_options_and_bad_values():
    settings = settings_from_args(parse("--strategy", "threshold", "--threshold", "0.8", "--max-per-call", "3"))
    assert settings.strategy == ThresholdUnmasking(0.8, 3)
    assert settings_from_args(parse("--strategy", "threshold", "--argmax")).strategy == ThresholdUnmasking(argmax=True)
    inner = settings_from_args(parse("--strategy", "spans", "--inner-strategy", "threshold", "--threshold", "0.5"))
    assert inner.strategy == Spans(ThresholdUnmasking(0.5))
    with pytest.raises(UserInputError, match="--threshold applies to --strategy threshold, not confidence"):
        settings_from_args(parse("--strategy", "confidence", "--threshold", "0.5"))
    with pytest.raises(InvalidArgument, match=r"threshold must be in \[0, 1\]"):
        ThresholdUnmasking(1.5)
    with pytest.raises(InvalidArgument, match="max_per_call must be at least 1"):
        ThresholdUnmasking(max_per_call=0)
