"""The training levers of the masked-diffusion loss: what each computes, and that the reported NELBO stays unbiased."""

import pytest
import torch
from toy import ExactDenoiser, ToyDistribution, toy_batch

from discrete_diff.batch import Batch
from discrete_diff.denoiser import Bidirectional, DenoiserInput, Explicit
from discrete_diff.errors import InvalidArgument
from discrete_diff.models import Transformer, TransformerConfig
from discrete_diff.objectives import MaskedDiffusion
from discrete_diff.objectives.levers import annealed_attention, normalize
from discrete_diff.process import sample_times
from discrete_diff.schedules import LinearSchedule
from discrete_diff.time_densities import PiecewiseTime, UniformTime, WindowTime

DENSITIES = [
    UniformTime(),
    WindowTime(0.2, 0.8, 0.2),
    WindowTime(0.0, 0.3, 0.1),
    PiecewiseTime([0, 0.5, 1], [0.9, 0.1]),
]


@pytest.mark.parametrize("density", DENSITIES, ids=repr)
def test_quantile_inverts_the_cdf_and_the_density_integrates_to_one(density):
    u = torch.linspace(0, 1, 100_001, dtype=torch.float64)[:-1]
    t = density.quantile(u)
    assert torch.all(torch.diff(t) >= 0) and float(t[0]) == 0.0
    # The mean of 1 / pi(t) under pi is the length of [0, 1]: the weights make a uniform integral.
    assert float((1 / density.density(t)).mean()) == pytest.approx(1.0, abs=1e-3)
    grid = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    assert float(torch.trapezoid(density.density(grid), grid)) == pytest.approx(1.0, abs=1e-3)


def test_bad_densities_are_refused():
    with pytest.raises(InvalidArgument, match="masses must be positive and sum to 1"):
        PiecewiseTime([0, 0.5, 1], [0.5, 0.4])
    with pytest.raises(InvalidArgument, match="floor must be in"):
        WindowTime(0.2, 0.8, 0.0)


def mean_nelbo(objective: MaskedDiffusion, toy: ToyDistribution, draws: int, seed: int = 0) -> tuple[float, float]:
    """Mean and standard error over many losses of the expected NELBO, E_p[per-sequence bound] (toy support)."""
    batch = toy_batch(toy.sequences.repeat(draws, 1))  # every sequence `draws` times
    loss = objective.loss(ExactDenoiser(toy), batch, toy.mask_id, torch.Generator().manual_seed(seed))
    per_sequence = loss.per_sequence.double().view(draws, -1)  # (draws, N)
    expected = per_sequence @ toy.probs  # (draws,) E_p of each draw
    return float(expected.mean()), float(expected.std() / draws**0.5)


@pytest.mark.parametrize("density", DENSITIES[1:], ids=repr)
def test_importance_weights_keep_the_bound_unbiased_and_leaving_them_out_is_visible(density):
    """With the exact denoiser and alpha(1) = 0 the expected bound is the toy's entropy, whatever the density."""
    toy = ToyDistribution(vocab=3, length=3, seed=4)
    weighted = MaskedDiffusion(LinearSchedule(), t_min=1e-6, time_density=density, antithetic=False)
    mean, error = mean_nelbo(weighted, toy, draws=4000)
    assert abs(mean - toy.entropy()) < 4 * error + 1e-3, (mean, toy.entropy(), error)


def test_leaving_the_importance_weights_out_is_visible():
    """Negative control: draws crowded at small t, unweighted, miss the bound (the test above can see bias)."""
    toy = ToyDistribution(vocab=3, length=3, seed=4)
    density = PiecewiseTime([0, 0.1, 1], [0.9, 0.1])
    objective = MaskedDiffusion(LinearSchedule(), t_min=1e-6, time_density=density, antithetic=False)
    generator = torch.Generator().manual_seed(0)
    batch = toy_batch(toy.sequences.repeat(4000, 1))
    t = sample_times(batch.size, t_min=1e-6, antithetic=False, density=density, generator=generator)
    stats = objective.stats_at(ExactDenoiser(toy), batch, t, toy.mask_id, generator)
    unweighted = float((stats.per_sequence.double().view(4000, -1) @ toy.probs).mean())
    assert abs(unweighted - toy.entropy()) > 0.05


def test_several_maskings_per_sequence_average_k_independent_draws():
    toy = ToyDistribution(vocab=3, length=4, seed=1)
    denoiser = ExactDenoiser(toy)
    batch = toy_batch(toy.sequences[:10])
    seen = []
    original = denoiser.forward
    denoiser.forward = lambda inputs: seen.append(inputs.ids.shape) or original(inputs)
    loss = MaskedDiffusion(maskings_per_sequence=3).loss(denoiser, batch, toy.mask_id, torch.Generator().manual_seed(0))
    assert seen == [(30, 4)] and loss.per_sequence.shape == (10,) and loss.scored_tokens.tolist() == [4] * 10
    mean, error = mean_nelbo(MaskedDiffusion(LinearSchedule(), t_min=1e-6, maskings_per_sequence=3), toy, 2000)
    assert abs(mean - toy.entropy()) < 4 * error + 1e-3


def test_normalizations_divide_the_weighted_sum_as_named():
    weighted, scored = torch.tensor([2.0, 6.0, 1.0]), torch.tensor([4, 2, 1])
    assert float(normalize(weighted, scored, "tokens")) == pytest.approx(9 / 7)
    assert float(normalize(weighted, scored, "sequences")) == pytest.approx((0.5 + 3.0 + 1.0) / 3)
    assert float(normalize(weighted, scored, "batch")) == pytest.approx(9 / (3 * 4))


def test_clipped_weights_cap_the_small_time_terms():
    toy = ToyDistribution(vocab=3, length=4, seed=2)
    batch = toy_batch(toy.sequences[:32])
    generator = torch.Generator().manual_seed(5)
    elbo = MaskedDiffusion(LinearSchedule(), t_min=1e-3, antithetic=True).loss(
        ExactDenoiser(toy, 0.3), batch, toy.mask_id, generator
    )
    generator = torch.Generator().manual_seed(5)
    clipped = MaskedDiffusion(LinearSchedule(), t_min=1e-3, train_weighting="clipped", weight_cap=2.0).loss(
        ExactDenoiser(toy, 0.3), batch, toy.mask_id, generator
    )
    # Same draws: the bound's terms agree, and capping 1/t at 2 can only lower the training value.
    assert torch.allclose(elbo.per_sequence, clipped.per_sequence)
    assert float(clipped.value) < float(elbo.value)


def test_annealed_attention_opens_future_keys_gradually():
    batch = Batch(
        torch.zeros(2, 64, dtype=torch.long), torch.ones(2, 64, dtype=torch.bool), torch.ones(2, 64, dtype=torch.bool)
    )
    assert isinstance(annealed_attention(batch, 1.0), Bidirectional)
    closed = annealed_attention(batch, 0.0)
    assert isinstance(closed, Explicit) and torch.equal(closed.allowed, torch.ones(64, 64, dtype=torch.bool).tril())
    half = annealed_attention(batch, 0.5).allowed
    future = ~torch.ones(64, 64, dtype=torch.bool).tril()
    assert half[~future].all() and 0.4 < float(half[future].double().mean()) < 0.6
    network = Transformer(TransformerConfig(d_model=16, n_layers=1, n_heads=2, max_length=64), 7).eval()
    ids = torch.randint(0, 7, (1, 64), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[0, 40:] = (changed[0, 40:] + 1) % 7
    with torch.no_grad():
        before = network(DenoiserInput(ids, closed))[0, :40]
        after = network(DenoiserInput(changed, closed))[0, :40]
    assert torch.allclose(before, after, atol=1e-6)  # fully causal: later tokens are invisible


def test_bad_lever_values_are_refused():
    with pytest.raises(InvalidArgument, match="maskings_per_sequence must be at least 1"):
        MaskedDiffusion(maskings_per_sequence=0)
    with pytest.raises(InvalidArgument, match="normalization must be one of"):
        MaskedDiffusion(normalization="nope")
