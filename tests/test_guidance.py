"""Classifier-free guidance against its closed form on exactly known toys: per position, the guided distribution the
strategy sees is p_c^(1 + w) p_u^(-w) renormalised (at w(t) under a schedule); single-token samples follow it;
w = 0 draws exactly the conditional samples; block diffusion with blocks of one token draws the guided chain."""

import copy
import math
from dataclasses import dataclass, field

import pytest
import torch
from toy import ExactBlockDenoiser, ExactDenoiser, ToyDistribution, log_probs_as_logits

from discrete_diff.denoiser import Bidirectional, DenoiserInput, select_scored
from discrete_diff.errors import InvalidArgument
from discrete_diff.sampling import (
    Ancestral,
    ConfidenceUnmasking,
    FirstHitting,
    Guidance,
    Remasking,
    Spans,
    ThresholdUnmasking,
    run_sampler,
)
from discrete_diff.sampling.block_diffusion import generate_blocks
from discrete_diff.sampling.guidance import guided_logits, schedule_factor
from discrete_diff.schedules import LogLinearSchedule

pytestmark = pytest.mark.usefixtures("one_thread")

COUNT = 20000
# At most 27 outcomes and 20,000 draws: an exact sampler's expected TV is about 0.01-0.02; 0.04 leaves room for chance
# and is far below the distances between the distributions compared (checked in each test).
TV_BOUND = 0.04


def mixture(toys: list[ToyDistribution], weights: list[float]) -> ToyDistribution:
    """The unconditional distribution of labelled toys: sum_c pi_c p_c (the same sequences, mixed probabilities)."""
    mixed = copy.copy(toys[0])
    mixed.probs = sum(w * toy.probs for w, toy in zip(weights, toys, strict=True))
    return mixed


class LabelledExact(torch.nn.Module):
    """Exact conditionals of toy c for label c; the null label (one past the last) gets those of their mixture."""

    time_conditioned = False

    def __init__(self, toys: list[ToyDistribution], weights: list[float]) -> None:
        super().__init__()
        self.toys = [*toys, mixture(toys, weights)]
        self.rows: list[int] = []
        self.times: list[float] = []

    def forward(self, inputs: DenoiserInput) -> torch.Tensor:
        self.rows.append(inputs.batch_size)
        self.times.append(float(inputs.t[0]))
        labels = inputs.class_labels
        logits = torch.empty(*inputs.ids.shape, self.toys[0].vocab + 1)
        for label, toy in enumerate(self.toys):
            rows = labels == label
            if rows.any():
                logits[rows] = ExactDenoiser(toy)(DenoiserInput(inputs.ids[rows], Bidirectional()))
        return select_scored(logits, inputs)


@dataclass(frozen=True)
class Recording(Ancestral):
    """Ancestral steps that keep what each step saw: (tokens, log-probabilities, time)."""

    seen: list = field(default_factory=list)

    def step(self, tokens, log_probs, plan, context):
        self.seen.append((tokens.clone(), log_probs.clone(), context.time.clone()))
        return super().step(tokens, log_probs, plan, context)


def closed_form(conditional: torch.Tensor, unconditional: torch.Tensor, w: float) -> torch.Tensor:
    """p_c^(1 + w) p_u^(-w) / Z per position: (..., V) probabilities in float64."""
    unnormalised = conditional.double() ** (1 + w) * unconditional.double() ** (-w)
    return unnormalised / unnormalised.sum(-1, keepdim=True)


@pytest.fixture(scope="module")
def toys():
    return [ToyDistribution(vocab=3, length=3, seed=seed) for seed in (21, 22)], [0.6, 0.4]


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine", "late"])
@pytest.mark.parametrize("steer", ["label", "prompt"])
def test_each_step_sees_the_closed_form_guided_distribution(toys, steer, schedule):
    """Every step of a cached run: the log-probabilities at masked positions are exactly the renormalised
    p_c^(1 + w(t)) p_u^(-w(t)); [MASK] stays impossible and nothing is NaN. Label guidance: p_u is the null label's;
    prompt guidance: p_u is the same model with the prompt's given token masked."""
    toys, weights = toys
    network = LabelledExact(toys, weights)
    tokens = torch.tensor([[3, 3, 3], [1, 3, 3], [3, 0, 3], [2, 3, 1]])  # 3 is [MASK]; row 0 all masked
    labels = torch.zeros(4, dtype=torch.long)
    if steer == "label":
        guidance = Guidance(2.5, schedule, labels=torch.full((4,), 2))
    else:
        guidance = Guidance(2.5, schedule, labels=labels, hidden=tokens != 3)
    strategy = Recording()
    run_sampler(
        network, tokens, mask_id=3, strategy=strategy, num_steps=6, schedule=LogLinearSchedule(),
        class_labels=labels, guidance=guidance, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    # One call per step, conditional and unconditional rows together, but where w(t) = 0 (the conditional alone).
    for rows, time in zip(network.rows, network.times, strict=True):
        assert rows == (8 if schedule_factor(schedule, torch.tensor([time])) > 0 else 4)
    assert {8} <= set(network.rows) <= ({8} if schedule == "constant" else {4, 8})
    if schedule == "late":
        assert network.rows.count(4) >= 2  # t = 1, 5/6, 4/6 are in the unguided half
    checked = 0
    for seen, log_probs, time in strategy.seen:
        assert not log_probs.isnan().any() and torch.isneginf(log_probs[..., 3]).all()
        masked = seen == 3
        conditional = toys[0].conditionals(seen)
        hidden = seen if steer == "label" else seen.masked_fill(guidance.hidden, 3)
        unconditional = (network.toys[-1] if steer == "label" else toys[0]).conditionals(hidden)
        for row in range(4):
            w = 2.5 * float(schedule_factor(schedule, time[row : row + 1]))
            expected = closed_form(conditional[row], unconditional[row], w)  # (L, V)
            got = log_probs[row, :, :3].exp()
            assert torch.allclose(got[masked[row]], expected[masked[row]], atol=1e-6)
            checked += int(masked[row].sum())
    assert checked >= 12


def test_the_schedules_grow_from_nothing_to_the_full_scale():
    time = torch.tensor([1.0, 0.75, 0.5, 0.0], dtype=torch.float64)
    assert schedule_factor("constant", time).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert schedule_factor("linear", time).tolist() == [0.0, 0.25, 0.5, 1.0]
    cosine = schedule_factor("cosine", time)
    assert cosine[0] == 0 and cosine[-1] == 1 and cosine[2] == pytest.approx(0.5) and cosine[1] < 0.25
    assert schedule_factor("late", time).tolist() == [0.0, 0.0, 1.0, 1.0]  # the later half only, from t = 1/2
    with pytest.raises(InvalidArgument, match="guidance_schedule 'sudden' is unknown"):
        schedule_factor("sudden", time)


def test_impossible_tokens_stay_impossible_without_nan():
    """-inf in both predictions ([MASK]) stays -inf, not (1 + w)(-inf) - w(-inf) = NaN; a token only the
    unconditional rules out keeps its conditional log-probability, not +inf."""
    conditional = torch.log(torch.tensor([[[0.5, 0.5, 0.0, 0.0]]]))
    unconditional = torch.log(torch.tensor([[[0.25, 0.0, 0.75, 0.0]]]))
    guided = torch.log_softmax(guided_logits(conditional, unconditional, torch.tensor([3.0])), dim=-1)
    assert not guided.isnan().any() and torch.isneginf(guided[..., 2:]).all()
    # token 0: 0.5^4 / 0.25^3; token 1 keeps 0.5 (the unconditional has no opinion on it)
    expected = torch.tensor([0.5**4 / 0.25**3, 0.5])
    assert torch.allclose(guided[0, 0, :2].exp(), expected / expected.sum())


def test_mixing_logits_equals_mixing_normalised_predictions():
    """The log-partition terms cancel: normalising the logits' mix gives the mix of the normalised predictions,
    renormalised; a row at w = 0 gets the conditional logits bit for bit."""
    generator = torch.Generator().manual_seed(5)
    conditional, unconditional = (4 * torch.randn(3, 7, 11, generator=generator, dtype=torch.float64) for _ in "cu")
    weight = torch.tensor([0.0, 1.5, 16.0], dtype=torch.float64)
    mixed = guided_logits(conditional, unconditional, weight)  # (3, 7, 11)
    w = weight[:, None, None]
    normalised = (1 + w) * conditional.log_softmax(-1) - w * unconditional.log_softmax(-1)
    assert torch.allclose(mixed.log_softmax(-1), normalised.log_softmax(-1), atol=1e-10)
    assert torch.equal(mixed[0], conditional[0])


def samples_of_one_token(toys, weights, w: float, strategy, seed: int = 0) -> torch.Tensor:
    network = LabelledExact(toys, weights)
    tokens = torch.full((COUNT, 1), toys[0].mask_id)
    labels = torch.zeros(COUNT, dtype=torch.long)
    guidance = Guidance(w, labels=torch.full((COUNT,), len(toys))) if w else None
    return run_sampler(
        network, tokens, mask_id=toys[0].mask_id, strategy=strategy, num_steps=4, schedule=LogLinearSchedule(),
        class_labels=labels, guidance=guidance, generator=torch.Generator().manual_seed(seed),
    ).tokens[:, 0]  # fmt: skip


def test_guided_samples_move_toward_the_label_as_predicted():
    """One token: the guided distribution is the whole sample's, so samples must follow the closed form; the
    label's most characteristic token (largest p_c / p_u) gains mass with w."""
    toys = [ToyDistribution(vocab=5, length=1, seed=seed, concentration=2.0) for seed in (31, 32)]
    weights = [0.5, 0.5]
    conditional, unconditional = toys[0].probs, mixture(toys, weights).probs
    characteristic = int((conditional / unconditional).argmax())
    previous = None
    for w in (0.0, 1.0, 3.0):
        expected = closed_form(conditional, unconditional, w)
        drawn = torch.bincount(samples_of_one_token(toys, weights, w, Ancestral()), minlength=5).double() / COUNT
        assert 0.5 * float((drawn - expected).abs().sum()) < TV_BOUND / 2
        if previous is not None:
            assert drawn[characteristic] > previous + 0.02
        previous = float(drawn[characteristic])
    assert 0.5 * float((closed_form(conditional, unconditional, 3.0) - conditional).abs().sum()) > TV_BOUND


STRATEGIES = [
    Ancestral(),
    FirstHitting(),
    Remasking(eta=0.2),
    ConfidenceUnmasking(),
    Spans(Ancestral(), 2),
    ThresholdUnmasking(0.5),
]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: type(s).__name__)
def test_scale_zero_draws_exactly_the_conditional_samples(toys, strategy):
    """w = 0 through the paired call (2B rows) draws the very samples of plain conditional sampling, same seed."""
    toys, weights = toys
    tokens = torch.full((500, 3), 3)
    labels = torch.ones(500, dtype=torch.long)
    common = dict(mask_id=3, strategy=strategy, num_steps=8, schedule=LogLinearSchedule(), class_labels=labels)
    plain = run_sampler(LabelledExact(toys, weights), tokens, generator=torch.Generator().manual_seed(4), **common)
    zero = Guidance(0.0, labels=torch.full((500,), 2))
    guided = run_sampler(
        LabelledExact(toys, weights), tokens, guidance=zero, generator=torch.Generator().manual_seed(4), **common
    )
    assert torch.equal(plain.tokens, guided.tokens) and plain.network_calls == guided.network_calls


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: type(s).__name__)
def test_every_strategy_samples_with_guidance(toys, strategy):
    """Guided runs of every strategy finish with every blank filled and reveal the way their unguided runs do."""
    toys, weights = toys
    network = LabelledExact(toys, weights)
    tokens = torch.full((48, 3), 3)
    tokens[:, 0] = 1  # a given token: pinned
    guidance = Guidance(2.0, "linear", labels=torch.full((48,), 2), hidden=tokens != 3, split_from=10**9)  # one call
    result = run_sampler(
        network, tokens, mask_id=3, strategy=strategy, num_steps=8, schedule=LogLinearSchedule(),
        class_labels=torch.zeros(48, dtype=torch.long), guidance=guidance,
    )  # fmt: skip
    assert (result.tokens[:, 0] == 1).all() and (result.tokens < 3).all()
    # Paired rows at every call but one made at t = 1, where linear guidance is 0: the conditional rows alone.
    assert [rows for rows, time in zip(network.rows, network.times, strict=True) if time < 1] != []
    for rows, time in zip(network.rows, network.times, strict=True):
        assert rows == (48 if time == 1.0 else 96)


def test_skipping_the_unconditional_pass_changes_no_sample(toys):
    """Where late guidance's w(t) is 0 a network runs the conditional rows alone; a wrapper, which always gets both
    passes (it may hold a cache of 2B rows), draws the same tokens: the skipped pass could not change the mix."""
    toys, weights = toys
    tokens = torch.full((40, 3), 3)
    guidance = Guidance(2.0, "late", labels=torch.full((40,), 2))
    common = dict(mask_id=3, strategy=Ancestral(), num_steps=6, schedule=LogLinearSchedule(),
                  class_labels=torch.zeros(40, dtype=torch.long), guidance=guidance)  # fmt: skip
    network, wrapped = LabelledExact(toys, weights), LabelledExact(toys, weights)
    skipping = run_sampler(network, tokens, generator=torch.Generator().manual_seed(5), **common)
    always = run_sampler(lambda inputs: wrapped(inputs), tokens, generator=torch.Generator().manual_seed(5), **common)
    assert torch.equal(skipping.tokens, always.tokens) and skipping.network_calls == always.network_calls
    assert network.rows.count(40) >= 1 and set(wrapped.rows) == {80}


def test_guidance_needs_something_to_steer_toward():
    with pytest.raises(InvalidArgument, match="guidance_scale needs something to steer toward"):
        Guidance(1.0)
    with pytest.raises(InvalidArgument, match="guidance_scale must be a finite number >= 0"):
        Guidance(-1.0, labels=torch.zeros(1, dtype=torch.long))


class LabelledBlockDenoiser(ExactBlockDenoiser):
    """The exact block-conditionals (blocks of one token) of toy c for rows labelled c, of their mixture for the
    null label: each row's cached context was encoded under its own label, as a real network's would be."""

    def __init__(self, toys: list[ToyDistribution], weights: list[float]) -> None:
        super().__init__(toys[0], block_size=1)
        self.toys = [*toys, mixture(toys, weights)]

    def _cached(self, inputs, cache, update_cache):
        context = cache.keys[0]
        context = inputs.ids[:, :0] if context is None else context[:, 0, :, 0]  # (B, C)
        width = inputs.ids.shape[1]
        rest = torch.full((len(context), self.toy.length - context.shape[1] - width), self.toy.mask_id)
        visible = torch.cat((context, inputs.ids, rest), dim=1)  # (B, L)
        probs = torch.empty(len(visible), width, self.toy.vocab, dtype=torch.float64)
        for label, toy in enumerate(self.toys):
            rows = inputs.class_labels == label
            probs[rows] = toy.conditionals(visible[rows])[:, context.shape[1] : context.shape[1] + width]
        if update_cache:
            stored = torch.cat((context, inputs.ids), dim=1)[:, None, :, None]  # (B, 1, C + W, 1)
            cache.write(0, stored, stored)
            cache.next_position += width
        return select_scored(log_probs_as_logits(probs), inputs)


def guided_chain(toys, weights, w: float) -> torch.Tensor:
    """p_w(x) = prod_i p_c(x_i | x_<i)^(1 + w) p_u(x_i | x_<i)^(-w) / Z_i: (V^L,) over the toy's sequences."""
    conditional, unconditional = toys[0], mixture(toys, weights)
    sequences = conditional.sequences
    probs = torch.ones(len(sequences), dtype=torch.float64)
    for i in range(conditional.length):
        prefix = sequences.clone()
        prefix[:, i:] = conditional.mask_id
        guided = closed_form(conditional.conditionals(prefix)[:, i], unconditional.conditionals(prefix)[:, i], w)
        probs *= guided.gather(1, sequences[:, i : i + 1])[:, 0]
    return probs


def test_block_diffusion_guidance_draws_the_guided_chain(toys):
    """Spans of one token: each span is one guided next-token draw, so samples follow the product of guided
    conditionals; the cache holds the context once per pass, each under its own label."""
    toys, weights = toys
    w = 1.5
    result = generate_blocks(
        LabelledBlockDenoiser(toys, weights), torch.zeros(COUNT, 0, dtype=torch.long), 3, block_size=1, window=3,
        mask_id=3, strategy=Ancestral(), steps_per_block=2, schedule=LogLinearSchedule(),
        class_labels=torch.zeros(COUNT, dtype=torch.long), guidance=Guidance(w, labels=torch.full((COUNT,), 2)),
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    expected = guided_chain(toys, weights, w)
    index = toys[0].index(result.tokens)
    drawn = torch.bincount(index, minlength=len(expected)).double() / COUNT
    assert 0.5 * float((drawn - expected).abs().sum()) < TV_BOUND
    assert 0.5 * float((guided_chain(toys, weights, 0.0) - expected).abs().sum()) > 2 * TV_BOUND


def test_the_guided_chain_is_a_distribution(toys):
    toys, weights = toys
    for w in (0.0, 1.5):
        assert math.isclose(float(guided_chain(toys, weights, w).sum()), 1.0, rel_tol=1e-9)
    assert torch.allclose(guided_chain(toys, weights, 0.0), toys[0].probs)
