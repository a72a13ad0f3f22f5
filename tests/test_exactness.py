"""The NELBO and the reverse process against an exactly known toy distribution."""

import pytest
import torch
from toy import ExactDenoiser, ToyDistribution, toy_batch

from discrete_diff.objectives import MaskedDiffusion
from discrete_diff.process import sample_times
from discrete_diff.sampling import Ancestral, run_sampler
from discrete_diff.schedules import CosineSchedule, LogLinearSchedule, PolynomialSchedule

DRAWS = 4000


def nelbo_per_sequence(denoiser, toy, objective, seed=0):
    """Mean and standard error of the one-draw NELBO of every sequence of the toy support."""
    generator = torch.Generator().manual_seed(seed)
    x0 = toy.sequences.repeat_interleave(DRAWS, dim=0)  # (N * DRAWS, L)
    t = torch.cat([sample_times(DRAWS, t_min=1e-6, generator=generator) for _ in toy.sequences])
    _, per_sequence, _ = objective.loss_at(denoiser, toy_batch(x0), t, toy.mask_id, generator)
    per_sequence = per_sequence.double().reshape(len(toy.sequences), DRAWS)
    return per_sequence.mean(-1), per_sequence.std(-1) / DRAWS**0.5


@pytest.mark.parametrize("schedule", [LogLinearSchedule(1e-3), CosineSchedule(), PolynomialSchedule(2.0)], ids=repr)
def test_exact_denoiser_nelbo_equals_negative_log_likelihood(schedule):
    toy = ToyDistribution(vocab=3, length=3, seed=1)
    mean, error = nelbo_per_sequence(ExactDenoiser(toy), toy, MaskedDiffusion(schedule))
    truth = -toy.log_prob(toy.sequences)
    # Antithetic draws make the sample std an overestimate, so 5 standard errors is a loose, safe bound.
    assert torch.all((mean - truth).abs() <= 5 * error + 1e-3), (mean - truth) / error


def test_perturbed_denoiser_gives_a_larger_expected_nelbo():
    toy = ToyDistribution(vocab=4, length=3, seed=2)
    objective = MaskedDiffusion(LogLinearSchedule())
    exact, _ = nelbo_per_sequence(ExactDenoiser(toy), toy, objective)
    perturbed, error = nelbo_per_sequence(ExactDenoiser(toy, mix_uniform=0.3), toy, objective)
    expected_exact = float((toy.probs * exact).sum())
    expected_perturbed = float((toy.probs * perturbed).sum())
    assert expected_exact == pytest.approx(toy.entropy(), abs=0.02)
    assert expected_perturbed > expected_exact + 0.05


def draw_samples(toy, steps, count, seed, cache=True, schedule=None):
    denoiser = ExactDenoiser(toy)
    tokens = torch.full((count, toy.length), toy.mask_id)
    result = run_sampler(
        denoiser,
        tokens,
        mask_id=toy.mask_id,
        strategy=Ancestral(),
        num_steps=steps,
        schedule=schedule or LogLinearSchedule(),
        generator=torch.Generator().manual_seed(seed),
        cache=cache,
    )
    return result


@pytest.mark.parametrize("schedule", [LogLinearSchedule(), CosineSchedule()], ids=repr)
def test_ancestral_sampler_reproduces_the_toy_distribution(schedule):
    toy = ToyDistribution(vocab=3, length=3, seed=3)
    samples = draw_samples(toy, steps=64, count=20000, seed=0, schedule=schedule).tokens
    assert not (samples == toy.mask_id).any()
    # For 27 outcomes and 20,000 samples the expected TV of an exact sampler is about 0.012.
    assert toy.total_variation(samples) < 0.03


def test_one_step_sampling_is_measurably_wrong():
    """Revealing every position at once draws them independently; the TV test must be able to see that."""
    toy = ToyDistribution(vocab=3, length=3, seed=3)
    samples = draw_samples(toy, steps=1, count=20000, seed=0).tokens
    assert toy.total_variation(samples) > 0.05


def test_caching_gives_the_same_samples_with_fewer_calls():
    toy = ToyDistribution(vocab=3, length=3, seed=4)
    cached = draw_samples(toy, steps=200, count=8, seed=5, cache=True)
    plain = draw_samples(toy, steps=200, count=8, seed=5, cache=False)
    assert torch.equal(cached.tokens, plain.tokens)
    assert plain.network_calls == 200
    # Every network call but the first follows a step that revealed something: at most L * B reveal events.
    assert cached.network_calls <= min(200, toy.length * 8)
