"""The likelihood bound and the training NELBO against an exactly known toy distribution, computed exactly.

Mask patterns are enumerated and the time integral is done by Gauss-Legendre quadrature, so the only error left
is float32 rounding (~1e-7): a weight off by 1% fails, and the bias of a schedule with alpha(1) = eps > 0 shows.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from toy import ExactDenoiser, ToyDistribution, toy_batch

from discrete_diff.denoiser import Bidirectional, DenoiserInput
from discrete_diff.objectives import MaskedDiffusion
from discrete_diff.process import draw_masked_count, masked_token_nll, nelbo
from discrete_diff.schedules import CosineSchedule, LinearSchedule, LogLinearSchedule, PolynomialSchedule

TOLERANCE = 2e-6  # float32 log-probabilities of values ~3 nats; a 1% error is ~3e-2
SCHEDULES = [LinearSchedule(), LogLinearSchedule(0.0), CosineSchedule(), PolynomialSchedule(2.0)]


def mask_patterns(length: int) -> torch.Tensor:
    """Every subset of the positions, (2^L, L) bool."""
    return torch.tensor(list(itertools.product([False, True], repeat=length)))


def gauss_legendre(nodes: int, low: float = 0.0, high: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    x, w = np.polynomial.legendre.leggauss(nodes)
    return torch.tensor(0.5 * (high - low) * x + 0.5 * (high + low)), torch.tensor(0.5 * (high - low) * w)


def every_sequence_and_mask(toy):
    """Rows (x0, masked) for every sequence of the support and every mask pattern: (N * P, L) each."""
    patterns = mask_patterns(toy.length)  # (P, L)
    x0 = toy.sequences.repeat_interleave(len(patterns), dim=0)  # (N * P, L)
    return x0, patterns.repeat(len(toy.sequences), 1)


def expected_bound(denoiser, toy, scale: float = 1.0) -> torch.Tensor:
    """E[one draw of the likelihood bound] per sequence (N,), exactly: m uniform on 1..n, the m positions uniform."""
    x0, masked = every_sequence_and_mask(toy)
    n, m = toy.length, masked.sum(-1)  # (N * P,)
    probability = torch.where(m > 0, 1.0 / (n * torch.tensor([math.comb(n, int(k)) for k in m])), 0.0)
    level = torch.full((len(x0),), 0.5)  # a time-independent denoiser ignores it
    draw = MaskedDiffusion().bound_of_masks(denoiser, toy_batch(x0), masked, level, toy.mask_id).per_sequence
    return (scale * probability * draw).reshape(len(toy.sequences), -1).sum(-1)


def expected_training_nelbo(denoiser, toy, schedule, nodes: int = 64) -> torch.Tensor:
    """E_t E_mask[the training NELBO of `loss_at`] per sequence (N,): masks enumerated, t by quadrature."""
    x0, masked = every_sequence_and_mask(toy)
    token_nll = masked_token_nll(denoiser_logits(denoiser, x0, masked, toy.mask_id), x0, masked, toy.mask_id)
    times, weights = gauss_legendre(nodes)
    total = torch.zeros(len(toy.sequences), dtype=torch.float64)
    maskable = torch.ones_like(masked)
    for t, w in zip(times, weights, strict=True):
        level = schedule.mask_probability(t.double())
        k = masked.sum(-1)
        probability = level**k * (1 - level) ** (toy.length - k)  # (N * P,)
        per_sequence = nelbo(token_nll, masked, t.expand(len(x0)), schedule, maskable).per_sequence
        total += w * (probability * per_sequence).reshape(len(toy.sequences), -1).sum(-1)
    return total


def denoiser_logits(denoiser, x0, masked, mask_id):
    return denoiser(DenoiserInput(x0.masked_fill(masked, mask_id), Bidirectional(), score_at=masked))


def level_integral(denoiser, toy, high: float, nodes: int = 32) -> torch.Tensor:
    """The integral over masking levels [0, high] of (1/level) E[sum of masked cross-entropies] per sequence (N,)."""
    x0, masked = every_sequence_and_mask(toy)
    summed = masked_token_nll(denoiser_logits(denoiser, x0, masked, toy.mask_id), x0, masked, toy.mask_id)
    summed = summed.double().sum(-1)  # (N * P,)
    k = masked.sum(-1)
    levels, weights = gauss_legendre(nodes, 0.0, high)
    total = torch.zeros(len(toy.sequences), dtype=torch.float64)
    for level, w in zip(levels, weights, strict=True):
        integrand = torch.where(k > 0, level ** (k - 1) * (1 - level) ** (toy.length - k) * summed, 0.0)
        total += w * integrand.reshape(len(toy.sequences), -1).sum(-1)
    return total


@pytest.fixture(scope="module")
def toy():
    return ToyDistribution(vocab=3, length=3, seed=1)


def test_the_bound_of_the_exact_denoiser_is_the_negative_log_likelihood(toy):
    error = expected_bound(ExactDenoiser(toy), toy) + toy.log_prob(toy.sequences)
    assert error.abs().max() < TOLERANCE


def test_a_weight_off_by_two_percent_fails_the_bound_test(toy):
    error = expected_bound(ExactDenoiser(toy), toy, scale=1.02) + toy.log_prob(toy.sequences)
    assert error.abs().max() > 1000 * TOLERANCE


def test_any_other_denoiser_has_a_larger_expected_bound(toy):
    """Per sequence another model may score lower; averaged over the data its bound exceeds the entropy."""
    truth = -toy.log_prob(toy.sequences)
    perturbed = expected_bound(ExactDenoiser(toy, mix_uniform=0.3), toy)
    assert float((toy.probs * (perturbed - truth)).sum()) > 0.05


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_the_training_nelbo_of_a_schedule_ending_fully_masked_is_exact(toy, schedule):
    error = expected_training_nelbo(ExactDenoiser(toy), toy, schedule) + toy.log_prob(toy.sequences)
    assert error.abs().max() < TOLERANCE


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_the_bound_is_the_time_integral_for_any_denoiser(toy, schedule):
    """Masking m of n tokens with weight n/m is the schedule's time integral with the level integrated out."""
    denoiser = ExactDenoiser(toy, mix_uniform=0.3)
    difference = expected_bound(denoiser, toy) - expected_training_nelbo(denoiser, toy, schedule)
    assert difference.abs().max() < TOLERANCE


def test_a_time_weight_off_by_two_percent_fails(toy):
    class Scaled(LinearSchedule):
        def weight(self, t):
            return 1.02 * super().weight(t)

    error = expected_training_nelbo(ExactDenoiser(toy), toy, Scaled()) + toy.log_prob(toy.sequences)
    assert error.abs().max() > 1000 * TOLERANCE


def test_the_eps_of_a_log_linear_schedule_leaves_the_top_masking_levels_out(toy):
    """alpha(1) = eps: the training NELBO integrates levels up to 1 - eps only, so it is below -log p(x0);
    the likelihood bound does not have this gap (test above)."""
    eps = 1e-3
    denoiser = ExactDenoiser(toy)
    training = expected_training_nelbo(denoiser, toy, LogLinearSchedule(eps))
    truth = -toy.log_prob(toy.sequences)
    assert (truth - training > 1e-3).all()  # the bias is visible on every sequence
    assert (training - level_integral(denoiser, toy, 1 - eps)).abs().max() < TOLERANCE


def test_the_masked_count_is_uniform_and_the_level_follows_its_law_given_the_count():
    """m uniform on 1..n at stratified u; given m the level is Beta(m, n - m + 1): P(level <= x) = P(Bin(n, x) >= m)."""
    n, rows = 6, 60000
    maskable = torch.ones(rows, n + 2, dtype=torch.bool)
    maskable[:, -2:] = False
    u = (torch.arange(rows, dtype=torch.float64) + 0.5) / rows
    masked, level = draw_masked_count(maskable, u, torch.Generator().manual_seed(0))
    counts = masked.sum(-1)
    assert not masked[:, -2:].any()
    assert torch.equal(torch.bincount(counts, minlength=n + 1)[1:], torch.full((n,), rows // n))
    per_position = masked[:, :n].double().mean(0)
    assert (per_position - (n + 1) / (2 * n)).abs().max() < 0.01  # E[m] / n, the same at every position
    grid = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    for m in range(1, n + 1):
        observed = (level[counts == m][:, None] <= grid).double().mean(0)
        expected = sum(math.comb(n, j) * grid**j * (1 - grid) ** (n - j) for j in range(m, n + 1))
        assert (observed - expected).abs().max() < 0.02, m  # Kolmogorov-Smirnov at 10,000 draws: 0.016 at 0.1%
        assert (observed - (grid >= m / n).double()).abs().max() > 0.1  # a level fixed at m/n would fail


def test_a_time_conditioned_network_sees_the_time_of_its_masking_level(toy):
    class Recording(ExactDenoiser):
        time_conditioned = True
        seen = []

        def forward(self, inputs):
            Recording.seen.append(inputs.t)
            return super().forward(inputs)

    for schedule in (LogLinearSchedule(0.3), CosineSchedule()):
        Recording.seen.clear()
        objective = MaskedDiffusion(schedule)
        level = torch.tensor([0.0001, 0.3, 0.69, 0.71, 1.0], dtype=torch.float64)
        masked = torch.ones(len(level), toy.length, dtype=torch.bool)
        x0 = toy.sequences[: len(level)]
        objective.bound_of_masks(Recording(toy), toy_batch(x0), masked, level, toy.mask_id)
        expected = schedule.time_at(1 - level).clamp(0, 1).float()
        assert torch.allclose(Recording.seen[0], expected), schedule
