"""Block diffusion's NELBO against exact values: the toy distribution, autoregression (B = 1) and MDLM (B = L).

Expectations are computed exactly: every mask pattern is enumerated, the integral over each block's masking level
is a Beta function (likelihood) or Gauss-Legendre quadrature (training times), so no Monte Carlo tolerance hides
a wrong weight.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from toy import ExactBlockDenoiser, ToyDistribution, toy_batch

from discrete_diff.batch import Batch
from discrete_diff.denoiser import Bidirectional, BlockCausal, DenoiserInput
from discrete_diff.errors import InvalidArgument, UserInputError
from discrete_diff.models import Transformer, TransformerConfig
from discrete_diff.objectives import BlockDiffusion, MaskedDiffusion
from discrete_diff.process import subs_log_probs
from discrete_diff.sampling.block_diffusion import CleanContext
from discrete_diff.schedules import (
    ClippedSchedule,
    CosineSchedule,
    LinearSchedule,
    PolynomialSchedule,
    training_interval,
)


def patterns(length: int) -> torch.Tensor:
    """(2^L, L) every mask pattern."""
    return torch.tensor(list(itertools.product([False, True], repeat=length)))


def rows(x0: torch.Tensor, masks: torch.Tensor) -> tuple[Batch, torch.Tensor]:
    """Every sequence with every pattern: a batch of N * P rows and its (N * P, L) masks."""
    n, p = len(x0), len(masks)
    return toy_batch(x0.repeat_interleave(p, dim=0)), masks.repeat(n, 1)


def exact_bound(objective: BlockDiffusion, network, x0: torch.Tensor, mask_id: int) -> torch.Tensor:
    """(N,) the expectation of `bound_at` over every block's level r ~ U(0, 1) and mask ~ Bernoulli(r)^n.

    Block b with n positions, k of them masked by pattern m_b, contributes
    integral_0^1 r^k (1 - r)^(n - k) / r dr * NLL_b(m_b) = Beta(k, n - k + 1) NLL_b(m_b). Weighting each joint pattern
    by prod_b Beta(k_b + 1, n_b - k_b + 1) (a distribution over patterns) and calling `bound_at` at levels
    k_b / (n_b + 1) (weight (n_b + 1) / k_b) gives exactly that sum, blocks being scored independently.
    """
    length = x0.shape[1]
    masks = patterns(length)
    block = torch.arange(length) // objective.block_size
    sizes = torch.bincount(block).tolist()  # n_b
    counts = torch.stack([masks[:, block == b].sum(-1) for b in range(len(sizes))], dim=1)  # (P, K) k_b
    beta = [[1.0 / ((n + 1) * math.comb(n, k)) for n, k in zip(sizes, row, strict=True)] for row in counts.tolist()]
    weights = torch.tensor([math.prod(row) for row in beta], dtype=torch.float64)  # (P,)
    assert float(weights.sum()) == pytest.approx(1.0)
    levels = counts.clamp_min(1).double() / (torch.tensor(sizes, dtype=torch.float64) + 1)  # (P, K)
    batch, masked = rows(x0, masks)
    with torch.no_grad():
        values = objective.bound_at(network, batch, levels.repeat(len(x0), 1).float(), mask_id, masked=masked)
    return (values.double().reshape(len(x0), len(masks)) * weights).sum(-1)


def exact_training_loss(objective: BlockDiffusion, network, x0: torch.Tensor, mask_id: int, nodes: int = 64):
    """(N,) the expectation of `loss_at`'s per-sequence value over t_b ~ U(0, 1) per block and the masks.

    By linearity over blocks (each block's term depends on its own time and mask only), calling every block at
    the same quadrature time t and weighting each joint pattern by its probability at t gives the same integral.
    """
    masks = patterns(x0.shape[1])
    batch, masked = rows(x0, masks)
    points, point_weights = np.polynomial.legendre.leggauss(nodes)
    total = torch.zeros(len(x0), dtype=torch.float64)
    for point, point_weight in zip((points + 1) / 2, point_weights / 2, strict=True):
        t = torch.tensor(point, dtype=torch.float64)
        p = float(objective.schedule.mask_probability(t))
        probability = torch.where(masks, p, 1 - p).prod(-1)  # (P,)
        times = torch.full((len(masked), objective.num_blocks(x0.shape[1])), point, dtype=torch.float32)
        with torch.no_grad():
            value = objective.loss_at(network, batch, times, mask_id, masked=masked).per_sequence.double()
        total += point_weight * (value.reshape(len(x0), len(masks)) * probability).sum(-1)
    return total


def tiny_transformer(vocab: int, seed: int = 0, max_length: int = 32) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, max_length=max_length), vocab).eval()


def test_block_causal_pattern_is_the_papers():
    """Rows are queries of [x_t ; x_0] (N = 4, blocks of 2): noisy block b sees noisy b and clean < b; clean block b
    sees clean <= b; nobody sees a padded key."""
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 0, 0],
            [0, 0, 1, 1, 1, 1, 0, 0],
            [0, 0, 1, 1, 1, 1, 0, 0],
            [0, 0, 0, 0, 1, 1, 0, 0],
            [0, 0, 0, 0, 1, 1, 0, 0],
            [0, 0, 0, 0, 1, 1, 1, 1],
            [0, 0, 0, 0, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(BlockCausal(2).structure(8, torch.device("cpu")), expected)
    padding = torch.tensor([[True, True, True, False] * 2])
    mask, is_causal = BlockCausal(2, padding).sdpa_mask(8, torch.device("cpu"))
    assert not is_causal and torch.equal(mask[0, 0], expected & padding[0][None, :])


def test_noisy_logits_depend_on_exactly_the_earlier_clean_blocks():
    """Through the real network: a noisy block's logits change with clean tokens of earlier blocks only."""
    network, length = tiny_transformer(vocab=7), 8
    x0 = torch.randint(0, 6, (1, length), generator=torch.Generator().manual_seed(0))
    xt = x0.clone()
    xt[:, 4:6] = 6  # block 2 (of size 2) masked
    objective = BlockDiffusion(2)

    def noisy_logits(clean):
        ids = torch.cat((xt, clean), dim=1)
        positions = torch.arange(length).repeat(2)
        with torch.no_grad():
            return network(DenoiserInput(ids, BlockCausal(objective.block_size), positions=positions))[:, 4:6]

    before = noisy_logits(x0)
    for position, should_change in [(1, True), (3, True), (4, False), (7, False)]:
        changed = x0.clone()
        changed[:, position] = (changed[:, position] + 1) % 6
        moved = not torch.allclose(noisy_logits(changed), before, atol=1e-6)
        assert moved == should_change, position


@pytest.mark.parametrize("block_size", [1, 2, 3, 4])
def test_exact_block_denoiser_bound_equals_negative_log_likelihood(block_size):
    toy = ToyDistribution(vocab=3, length=4, seed=1)
    objective = BlockDiffusion(block_size)
    bound = exact_bound(objective, ExactBlockDenoiser(toy, block_size), toy.sequences, toy.mask_id)
    assert torch.allclose(bound, -toy.log_prob(toy.sequences), atol=1e-5)


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule(), PolynomialSchedule(2.0)], ids=repr)
def test_training_loss_of_the_exact_denoiser_integrates_to_negative_log_likelihood(schedule):
    toy = ToyDistribution(vocab=3, length=4, seed=2)
    objective = BlockDiffusion(2, schedule)
    loss = exact_training_loss(objective, ExactBlockDenoiser(toy, 2), toy.sequences, toy.mask_id)
    assert torch.allclose(loss, -toy.log_prob(toy.sequences), atol=1e-5)


def test_a_worse_denoiser_has_a_larger_expected_bound():
    toy = ToyDistribution(vocab=3, length=4, seed=3)
    objective = BlockDiffusion(2)
    worse = exact_bound(objective, ExactBlockDenoiser(toy, 2, mix_uniform=0.3), toy.sequences, toy.mask_id)
    expected = float((toy.probs * worse).sum())
    assert expected > toy.entropy() + 0.05


def test_block_size_one_is_the_exact_left_to_right_nll_of_the_same_weights():
    """B = 1: the bound's exact expectation, its one-pass value, `likelihood` and the key-value-cached scoring
    that sampling uses (the [MASK] query at position i over the cached clean x_<i) all agree."""
    vocab, length = 5, 5
    network = tiny_transformer(vocab + 1)
    x0 = torch.randint(0, vocab, (6, length), generator=torch.Generator().manual_seed(4))
    objective = BlockDiffusion(1)
    expectation = exact_bound(objective, network, x0, vocab)
    with torch.no_grad():
        one_pass = objective.exact_single_token(network, toy_batch(x0), vocab).double()
    context = CleanContext(network, block_size=1, window=32)
    cached = torch.zeros(len(x0), dtype=torch.float64)
    with torch.no_grad():
        for i in range(length):
            query = torch.full((len(x0), 1), vocab)
            log_probs = subs_log_probs(context.denoiser(1)(DenoiserInput(query, Bidirectional())), vocab)  # (B, 1, V)
            cached -= log_probs[:, 0].gather(-1, x0[:, i : i + 1]).squeeze(-1).double()
            context.extend(x0[:, i : i + 1])
    bound = objective.likelihood(network, [toy_batch(x0)], vocab)
    assert torch.allclose(expectation, one_pass, atol=1e-5) and torch.allclose(one_pass, cached, atol=1e-5)
    assert bound.exact and bound.nats_per_token == pytest.approx(float(cached.sum()) / x0.numel(), rel=1e-5)


def test_block_size_of_the_whole_sequence_is_masked_diffusion_for_the_same_weights_and_draws():
    vocab, length = 6, 8
    network = tiny_transformer(vocab + 1)
    x0 = torch.randint(0, vocab, (5, length), generator=torch.Generator().manual_seed(5))
    attention = torch.arange(length) < torch.tensor([8, 8, 6, 5, 8])[:, None]  # (B, L) padded rows
    batch = Batch(x0, attention, attention)
    t = torch.tensor([0.3, 0.4, 0.5, 0.7, 0.95])
    with torch.no_grad():
        reference = MaskedDiffusion(LinearSchedule()).loss_at(
            network, batch, t, vocab, torch.Generator().manual_seed(6)
        )
        block = BlockDiffusion(length, LinearSchedule()).loss_at(
            network, batch, t[:, None], vocab, torch.Generator().manual_seed(6)
        )
    assert reference.per_sequence.abs().min() > 0
    assert torch.allclose(block.per_sequence, reference.per_sequence, rtol=1e-5, atol=1e-5)
    assert torch.equal(block.scored_tokens, reference.scored_tokens)


def test_training_times_are_stratified_per_block_and_stay_in_a_clipped_window():
    objective = BlockDiffusion(4, ClippedSchedule(LinearSchedule(), beta=0.3, omega=0.8))
    batch = toy_batch(torch.zeros(8, 12, dtype=torch.long))
    low, high = training_interval(objective.schedule, objective.t_min)
    times = objective.stratified(batch, low, high, torch.Generator().manual_seed(0))  # (B, K)
    assert times.shape == (8, 3) and times.min() >= 0.3 and times.max() <= 0.8
    gaps = times.sort(dim=0).values.diff(dim=0)  # antithetic: evenly spaced across the batch, per block
    assert torch.allclose(gaps, torch.full_like(gaps, 0.5 / 8), atol=1e-6)
    assert not torch.equal(times[:, 0], times[:, 1])  # each block draws its own offset


def test_clipped_schedule_is_its_inner_schedule_outside_training():
    inner = CosineSchedule()
    clipped = ClippedSchedule(inner, beta=0.2, omega=0.9)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    assert torch.equal(clipped.alpha(t), inner.alpha(t)) and torch.equal(clipped.weight(t[1:]), inner.weight(t[1:]))
    low, high = clipped.training_interval()
    rates = inner.mask_probability(torch.tensor([low, high], dtype=torch.float64))
    assert rates.tolist() == pytest.approx([0.2, 0.9])


def test_evaluation_mode_reports_the_bound_and_training_mode_the_clipped_loss():
    """Validation (eval mode) draws levels over [0, 1]: its mean is the bound; training draws only the window."""
    toy = ToyDistribution(vocab=3, length=4, seed=7)
    objective = BlockDiffusion(2, ClippedSchedule(LinearSchedule(), beta=0.45, omega=0.55))
    denoiser = ExactBlockDenoiser(toy, 2).eval()
    x0 = toy.sequences[[0, 40]].repeat(4000, 1)  # alternating rows: each sequence gets every other stratum
    generator = torch.Generator().manual_seed(8)
    evaluation = objective.loss(denoiser, toy_batch(x0), toy.mask_id, generator).per_sequence.double()
    evaluation = evaluation.reshape(-1, 2).T  # (2, 4000)
    error = evaluation.std(-1) / 4000**0.5
    assert torch.all((evaluation.mean(-1) + toy.log_prob(toy.sequences[[0, 40]])).abs() < 5 * error)
    clipped = objective.loss(denoiser.train(), toy_batch(x0), toy.mask_id, generator).per_sequence.double()
    assert clipped.reshape(-1, 2).std(0).max() < evaluation.std(-1).min()  # the window's draws spread less


def test_bad_settings_are_one_line_errors():
    with pytest.raises(InvalidArgument, match="block_size must be at least 1"):
        BlockDiffusion(0)
    network = Transformer(TransformerConfig(d_model=8, n_layers=1, n_heads=2, time_conditioning=True), 4)
    with pytest.raises(UserInputError, match="time-independent network"):
        BlockDiffusion(2).loss(network, toy_batch(torch.zeros(1, 4, dtype=torch.long)), 3)


def test_a_clipped_block_objective_travels_as_plain_data():
    from discrete_diff.objectives import Objective
    from discrete_diff.specs import build, to_spec

    objective = BlockDiffusion(8, ClippedSchedule(CosineSchedule(), beta=0.2, omega=0.7), t_min=1e-4)
    spec = to_spec(objective)
    assert spec["init_args"]["block_size"] == 8 and spec["init_args"]["schedule"]["init_args"]["beta"] == 0.2
    rebuilt = build(spec, Objective)
    assert isinstance(rebuilt.schedule.inner, CosineSchedule) and rebuilt.block_size == 8 and rebuilt.t_min == 1e-4
    assert rebuilt.schedule.training_interval() == objective.schedule.training_interval()
