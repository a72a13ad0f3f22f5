"""Uniform-state diffusion against the exactly known toy distribution: the bound's expectation, computed exactly
(every noisy sequence enumerated, the time integral by Gauss-Legendre quadrature on geometric panels), equals
-log p(x0) for every schedule ending uniform; the ancestral sampler reproduces the toy and its infill conditionals.
Each claim has a negative control that the same test would catch."""

import numpy as np
import pytest
import torch
from toy import ToyDistribution, toy_batch
from uniform_toy import ExactUniformDenoiser, noisy_likelihood

from discrete_diff.noising import Uniform
from discrete_diff.objectives import UniformDiffusion
from discrete_diff.sampling import Ancestral, FirstHitting, run_sampler
from discrete_diff.schedules import CosineSchedule, LinearSchedule, LogLinearSchedule, PolynomialSchedule

TOLERANCE = 1e-6
SCHEDULES = [LinearSchedule(), LogLinearSchedule(0.0), CosineSchedule(), PolynomialSchedule(2.0)]
COUNT = 20000

pytestmark = pytest.mark.usefixtures("one_thread")


def panel_nodes(nodes: int = 12, panels: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes and weights on [0, 1] split at 2^-k: the integrand's log(u) near 0 is smooth on each."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    edges = [0.0, *(2.0**-k for k in range(panels, -1, -1))]
    points, weights = [], []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        points.append(0.5 * (high - low) * x + 0.5 * (high + low))
        weights.append(0.5 * (high - low) * w)
    return torch.tensor(np.concatenate(points)), torch.tensor(np.concatenate(weights))


def expected_bound(toy, denoiser, schedule, scale: float = 1.0) -> torch.Tensor:
    """E over u and x_t ~ q(x_t | x0) of one draw of the bound, per sequence of the support (N,), exactly."""
    objective = UniformDiffusion(schedule)
    count = len(toy.sequences)
    x0 = toy.sequences.repeat_interleave(count, dim=0)  # (N * N, L): every (x0, x_t) pair
    xt = toy.sequences.repeat(count, 1)
    total = torch.zeros(count, dtype=torch.float64)
    for u, w in zip(*panel_nodes(), strict=True):
        alpha = schedule.alpha(u**2).expand(len(x0))
        same = (x0 == xt).double()
        probability = (alpha[:, None] * same + (1 - alpha[:, None]) / toy.vocab).prod(-1)  # (N * N,) q(x_t | x0)
        draw = objective.bound_of_states(denoiser, toy_batch(x0), xt, u.expand(len(x0)), toy.mask_id)
        total += w * scale * (probability * draw).reshape(count, count).sum(-1)
    return total


@pytest.fixture(scope="module")
def toy():
    return ToyDistribution(vocab=3, length=3, seed=1)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_the_bound_of_the_exact_denoiser_is_the_negative_log_likelihood(toy, schedule):
    error = expected_bound(toy, ExactUniformDenoiser(toy, schedule), schedule) + toy.log_prob(toy.sequences)
    assert error.abs().max() < TOLERANCE


def test_a_bound_off_by_two_percent_fails(toy):
    schedule = CosineSchedule()
    error = expected_bound(toy, ExactUniformDenoiser(toy, schedule), schedule, 1.02) + toy.log_prob(toy.sequences)
    assert error.abs().max() > 1000 * TOLERANCE


def test_a_time_weight_off_by_two_percent_fails(toy):
    """The schedule's alpha' enters only the weight -alpha' / (N alpha): scaling it must show."""

    class Scaled(LinearSchedule):
        def alpha_prime(self, t):
            return 1.02 * super().alpha_prime(t)

    exact = ExactUniformDenoiser(toy, LinearSchedule())
    error = expected_bound(toy, exact, Scaled()) + toy.log_prob(toy.sequences)
    assert error.abs().max() > 1000 * TOLERANCE


def test_the_exact_conditional_including_the_position_itself_is_not_optimal(toy):
    """x_theta must be the conditional given the *other* positions: the plain posterior p(x0^i | x_t) (what an
    absorbing denoiser learns) leaves a visible gap, averaged over the data."""
    schedule = LinearSchedule()

    class Posterior(ExactUniformDenoiser):
        def conditionals(self, xt, t):
            weights = noisy_likelihood(self.toy, xt, self.schedule.alpha(t)).prod(-1) * self.toy.probs[None]
            joint = torch.einsum("bn,nlv->blv", weights, self.toy.one_hot)
            return joint / joint.sum(-1, keepdim=True)

    gap = expected_bound(toy, Posterior(toy, schedule), schedule) + toy.log_prob(toy.sequences)
    assert float((toy.probs * gap).sum()) > 1e-3


def test_any_other_denoiser_has_a_larger_expected_bound(toy):
    schedule = LinearSchedule()
    gap = expected_bound(toy, ExactUniformDenoiser(toy, schedule, mix_uniform=0.3), schedule)
    gap = gap + toy.log_prob(toy.sequences)
    assert float((toy.probs * gap).sum()) > 0.05


def test_the_prior_term_is_the_divergence_from_uniform_of_the_last_noise_level():
    schedule = LogLinearSchedule(0.1)
    process = Uniform(blank_id=4, vocab_size=5)  # 4 states
    alpha = 0.1
    q = torch.full((4,), (1 - alpha) / 4, dtype=torch.float64)
    q[0] += alpha
    assert process.prior_divergence(schedule) == pytest.approx(float((q * (q * 4).log()).sum()), abs=1e-12)
    assert Uniform(4, 5).prior_divergence(LinearSchedule()) == 0.0


def test_the_monte_carlo_bound_agrees_with_its_exact_expectation(toy):
    """`likelihood` (random t and x_t, K stratified draws) lands within its standard errors of the exact value."""
    schedule = CosineSchedule()
    denoiser = ExactUniformDenoiser(toy, schedule, mix_uniform=0.2)
    exact = expected_bound(toy, denoiser, schedule)
    picks = torch.multinomial(toy.probs, 256, replacement=True, generator=torch.Generator().manual_seed(0))
    batches = [toy_batch(toy.sequences[picks[i : i + 64]]) for i in range(0, 256, 64)]
    bound = UniformDiffusion(schedule).likelihood(denoiser, batches, toy.mask_id, time_draws=8)
    expected = float(exact[picks].sum()) / (256 * toy.length)
    assert abs(bound.nats_per_token - expected) < 4 * bound.standard_error
    assert bound.standard_error < 0.05


def sample(toy, denoiser, steps, tokens, seed=0, strategy=None):
    return run_sampler(
        denoiser, tokens, mask_id=toy.mask_id, strategy=strategy or Ancestral(), num_steps=steps,
        schedule=denoiser.schedule, generator=torch.Generator().manual_seed(seed),
        process=Uniform(toy.mask_id, toy.vocab + 1),
    )  # fmt: skip


def test_ancestral_samples_reproduce_the_toy_distribution():
    toy = ToyDistribution(vocab=3, length=3, seed=3)
    denoiser = ExactUniformDenoiser(toy, LinearSchedule())
    result = sample(toy, denoiser, 128, torch.full((COUNT, toy.length), toy.mask_id))
    # 27 outcomes and 20,000 samples: an exact sampler's expected TV is about 0.012; 128 steps add little.
    assert toy.total_variation(result.tokens) < 0.03
    assert result.network_calls == 128  # every step may change every position: nothing is skipped


def test_one_step_or_a_wrong_denoiser_samples_measurably_wrong():
    toy = ToyDistribution(vocab=3, length=3, seed=3)
    tokens = torch.full((COUNT, toy.length), toy.mask_id)
    assert toy.total_variation(sample(toy, ExactUniformDenoiser(toy, LinearSchedule()), 1, tokens).tokens) > 0.1
    wrong = ExactUniformDenoiser(toy, LinearSchedule(), mix_uniform=0.5)
    assert toy.total_variation(sample(toy, wrong, 128, tokens).tokens) > 0.1


def pair_tv(samples: dict, truth: dict) -> float:
    return 0.5 * sum(abs(samples.get(k, 0.0) - truth.get(k, 0.0)) for k in truth.keys() | samples.keys())


def test_infilling_keeps_the_given_tokens_and_moves_the_blanks_toward_their_conditional():
    """Clamping is approximate for a uniform model: its x_theta takes the given tokens for noisy ones (it never saw
    clean context at t > 0), so even the exact denoiser does not draw the exact conditional. The fill must still
    be much closer to the conditional than to the blanks' unconditional law."""
    toy = ToyDistribution(vocab=3, length=4, seed=1)
    tokens = torch.full((COUNT, toy.length), toy.mask_id)
    tokens[:, 0], tokens[:, 3] = 0, 1
    result = sample(toy, ExactUniformDenoiser(toy, LinearSchedule()), 128, tokens)
    assert (result.tokens[:, 0] == 0).all() and (result.tokens[:, 3] == 1).all()
    keep = (toy.sequences[:, 0] == 0) & (toy.sequences[:, 3] == 1)
    conditional, unconditional = {}, {}
    for sequence, p, kept in zip(toy.sequences.tolist(), toy.probs.tolist(), keep.tolist(), strict=True):
        unconditional[tuple(sequence[1:3])] = unconditional.get(tuple(sequence[1:3]), 0.0) + p
        if kept:
            conditional[tuple(sequence[1:3])] = p / float(toy.probs[keep].sum())
    pairs, counts = result.tokens[:, 1:3].unique(dim=0, return_counts=True)
    empirical = {tuple(p.tolist()): c / COUNT for p, c in zip(pairs, counts.tolist(), strict=True)}
    assert pair_tv(empirical, conditional) < 0.5 * pair_tv(unconditional, conditional)


def test_a_strategy_that_only_reveals_masks_is_refused_for_a_uniform_model(toy):
    with pytest.raises(ValueError, match="FirstHitting reveals"):
        sample(toy, ExactUniformDenoiser(toy, LinearSchedule()), 4, torch.full((2, 3), toy.mask_id),
               strategy=FirstHitting())  # fmt: skip
