"""Every strategy with every filter, on a real (random-weight) transformer: pinned positions, no [MASK] left,
reproducibility, and the number of network calls each strategy promises."""

import math

import pytest
import torch

from discrete_diff.errors import InvalidArgument
from discrete_diff.models.transformer import Transformer, TransformerConfig
from discrete_diff.sampling import (
    STRATEGIES,
    Ancestral,
    ConfidenceUnmasking,
    FirstHitting,
    NegativeEntropy,
    Remasking,
    SamplingSettings,
    Spans,
    ThresholdUnmasking,
    TopTwoMargin,
    run_sampler,
    strategy_named,
)
from discrete_diff.schedules import LinearSchedule, LogLinearSchedule, PolynomialSchedule

VOCAB, MASK, LENGTH = 12, 11, 24

STRATEGY_CASES = {
    "ancestral": Ancestral(),
    "first-hitting": FirstHitting(),
    "confidence-max-prob": ConfidenceUnmasking(),
    "confidence-margin-k3": ConfidenceUnmasking(TopTwoMargin(), reveals_per_step=3),
    "confidence-entropy": ConfidenceUnmasking(NegativeEntropy()),
    "remasking": Remasking(eta=0.2),
    "spans-ancestral": Spans(Ancestral(), span_length=8),
    "spans-first-hitting": Spans(FirstHitting(), span_length=8),
    "spans-confidence": Spans(ConfidenceUnmasking(), span_length=8),
    "threshold-capped": ThresholdUnmasking(0.1, max_per_call=4),
    "spans-threshold": Spans(ThresholdUnmasking(0.1), span_length=8),
}
FILTER_CASES = {
    "none": {},
    "temperature": {"temperature": 0.7},
    "top-k": {"top_k": 3},
    "top-p": {"top_p": 0.8},
    "repetition": {"repetition_penalty": 1.5},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_named_strategy_has_a_case():
    assert {type(strategy) for strategy in STRATEGY_CASES.values()} == set(STRATEGIES.values())


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    config = TransformerConfig(d_model=32, n_layers=2, n_heads=2, max_length=LENGTH)
    return Transformer(config, vocab_size=VOCAB).eval()


def prompt(batch=3, seed=0):
    """Rows with given tokens scattered among blanks (different blanks per row)."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, MASK, (batch, LENGTH), generator=generator)
    blanks = torch.rand(batch, LENGTH, generator=generator) < 0.6
    return tokens.masked_fill(blanks, MASK), blanks


def sample(network, case, filters=None, seed=1, steps=10, tokens=None, schedule=None, **kwargs):
    tokens = prompt()[0] if tokens is None else tokens
    return run_sampler(
        network,
        tokens,
        mask_id=MASK,
        strategy=STRATEGY_CASES[case],
        num_steps=steps,
        schedule=schedule or LogLinearSchedule(),
        filters=SamplingSettings(**(filters or {})).filters(banned=(), mask_id=MASK),
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )


@pytest.mark.parametrize("filters", FILTER_CASES.values(), ids=FILTER_CASES.keys())
@pytest.mark.parametrize("case", STRATEGY_CASES)
def test_given_positions_kept_no_mask_left_and_seeded(network, case, filters):
    tokens, blanks = prompt()
    first = sample(network, case, filters, tokens=tokens)
    assert torch.equal(first.tokens[~blanks], tokens[~blanks])
    assert not (first.tokens == MASK).any()
    again = sample(network, case, filters, tokens=tokens)
    assert torch.equal(first.tokens, again.tokens) and first.network_calls == again.network_calls
    other = sample(network, case, filters, tokens=tokens, seed=2)
    assert not torch.equal(first.tokens, other.tokens)


def one_row(blanks: int):
    tokens = torch.arange(LENGTH)[None] % MASK
    tokens[0, torch.randperm(LENGTH, generator=torch.Generator().manual_seed(blanks))[:blanks]] = MASK
    return tokens


@pytest.mark.parametrize("blanks", [1, 5, 17])
def test_network_calls_are_as_promised(network, blanks):
    tokens, steps = one_row(blanks), 8
    calls = {case: sample(network, case, tokens=tokens, steps=steps).network_calls for case in STRATEGY_CASES}
    assert calls["first-hitting"] == blanks
    assert calls["spans-first-hitting"] == blanks
    assert calls["ancestral"] <= min(steps, blanks)
    assert calls["spans-ancestral"] <= min(steps, blanks)
    # Confidence spreads the blanks evenly: every step reveals at least one until none are left.
    assert calls["confidence-max-prob"] == min(steps, blanks)
    assert calls["confidence-margin-k3"] == math.ceil(blanks / 3)
    assert calls["remasking"] <= steps
    # Threshold: at least one reveal per call, at most the cap.
    assert math.ceil(blanks / 4) <= calls["threshold-capped"] <= blanks
    assert calls["spans-threshold"] <= blanks


def test_caching_changes_nothing_but_the_number_of_calls(network):
    for case in STRATEGY_CASES:
        cached = sample(network, case, steps=40)
        plain = sample(network, case, steps=40, cache=False)
        assert torch.equal(cached.tokens, plain.tokens), case
        assert cached.network_calls <= plain.network_calls


def test_caching_changes_no_sample_of_a_single_row(network):
    """Spans finish early, so the cached run skips steps that the plain run takes: both must draw the same."""
    for case in ("spans-ancestral", "ancestral", "spans-confidence", "spans-first-hitting"):
        for seed in range(50):
            tokens = prompt(batch=1, seed=seed)[0]
            cached = sample(network, case, tokens=tokens, seed=seed, steps=40)
            plain = sample(network, case, tokens=tokens, seed=seed, steps=40, cache=False)
            assert torch.equal(cached.tokens, plain.tokens), (case, seed)


@pytest.mark.parametrize("schedule", [LinearSchedule(), LogLinearSchedule(0.0), PolynomialSchedule(2.0)], ids=repr)
@pytest.mark.parametrize("case", ["remasking", "ancestral", "first-hitting", "spans-ancestral"])
def test_schedules_that_end_fully_masked_sample(network, case, schedule):
    """alpha(1) = 0: nothing is revealed at t = 1, and no step divides by it."""
    tokens, blanks = prompt()
    for given in (tokens, torch.where(blanks, torch.zeros_like(tokens), tokens)):  # blanks masked, or revealed
        result = sample(network, case, tokens=given, steps=12, schedule=schedule, pinned=~blanks)
        assert torch.equal(result.tokens[~blanks], tokens[~blanks]) and not (result.tokens == MASK).any()


def test_remasking_revises_revealed_tokens_but_never_pinned_ones(network):
    tokens, blanks = prompt(batch=4)
    prefilled = torch.where(blanks, torch.zeros_like(tokens), tokens)  # revealed, not pinned: may be revised
    pinned = ~blanks
    strategy = Remasking(eta=1.0)
    result = run_sampler(
        network, prefilled, mask_id=MASK, strategy=strategy, num_steps=20, schedule=LogLinearSchedule(),
        pinned=pinned, record=True, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert torch.equal(result.tokens[pinned], tokens[pinned])
    frames = result.trajectory.frames  # (F, B, L)
    assert (frames[:, pinned] == tokens[pinned]).all()
    assert (frames[:, blanks] == MASK).any(), "eta=1 must mask revealed tokens again"
    assert (result.tokens[blanks] != 0).any()


def test_a_pinned_mask_is_refused(network):
    tokens, _ = prompt()
    with pytest.raises(ValueError, match="pinned position holds"):
        run_sampler(network, tokens, mask_id=MASK, strategy=Ancestral(), num_steps=4, schedule=LogLinearSchedule(),
                    pinned=torch.ones_like(tokens, dtype=torch.bool))  # fmt: skip


def test_unknown_strategies_options_and_bad_values_are_refused():
    with pytest.raises(InvalidArgument, match="strategy 'nope' is unknown"):
        strategy_named("nope")
    with pytest.raises(TypeError):
        strategy_named("ancestral", no_such_option=1)
    assert strategy_named("remasking", eta=0.3) == Remasking(eta=0.3)
    with pytest.raises(InvalidArgument, match="eta must be in"):
        Remasking(eta=1.5)
    with pytest.raises(InvalidArgument, match="reveals_per_step must be at least 1"):
        ConfidenceUnmasking(reveals_per_step=0)
    with pytest.raises(InvalidArgument, match="inner cannot be Spans"):
        Spans(Spans())


@pytest.mark.parametrize("case", STRATEGY_CASES)
def test_follows_num_steps_says_whether_the_step_count_changes_the_samples(network, case):
    # Benchmarks measure a strategy that ignores the step count once; that is only sound if its samples and
    # calls are the same at every count, and a strategy that follows the count must not claim otherwise.
    tokens = prompt()[0]
    runs = [sample(network, case, tokens=tokens, steps=steps) for steps in (2, 5, 40)]
    same = all(torch.equal(r.tokens, runs[0].tokens) and r.network_calls == runs[0].network_calls for r in runs)
    assert STRATEGY_CASES[case].follows_num_steps == (not same)
