"""The pieces of the training loop on their own: the learning-rate schedule, the weight EMA, training weightings."""

import math

import pytest
import torch
from torch.optim.swa_utils import AveragedModel
from toy import ExactDenoiser, ToyDistribution, toy_batch

from discrete_diff.objectives import MaskedDiffusion
from discrete_diff.process import sample_times
from discrete_diff.training.ema import warmup_ema
from discrete_diff.training.optimizer import OptimizerConfig, build_optimizer


def learning_rates(config: OptimizerConfig, total: int, fractions: list[float]) -> list[float]:
    """The learning rate at steps 0, 1, ... while the spent share of the wall-clock budget follows `fractions`."""
    network = torch.nn.Linear(2, 2)
    current = {"value": 0.0}
    optimizer, schedule = build_optimizer(network, config, total, lambda: current["value"])
    rates = []
    for fraction in fractions:
        current["value"] = fraction
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def cosine(progress: float, config: OptimizerConfig) -> float:
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def test_schedule_warms_up_then_follows_steps_without_a_time_limit():
    config = OptimizerConfig(lr=1e-2, warmup_steps=4, min_lr_ratio=0.1)
    rates = learning_rates(config, total=24, fractions=[0.0] * 25)
    assert rates[:4] == pytest.approx([config.lr * k / 4 for k in range(4)])
    for step in (4, 10, 24):
        assert rates[step] == pytest.approx(cosine((step - 4) / 20, config))
    assert rates[-1] == pytest.approx(config.lr * config.min_lr_ratio)


def test_schedule_follows_the_wall_clock_when_time_runs_out_first():
    """A run that has spent 75% of max_time at step 6 of 1000 is 75% along its cosine, not 0.2%."""
    config = OptimizerConfig(lr=1e-2, warmup_steps=2, min_lr_ratio=0.1)
    rates = learning_rates(config, total=1000, fractions=[0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    assert rates[2:] == pytest.approx([cosine(p, config) for p in (0.0, 0.25, 0.5, 0.75, 1.0)], rel=1e-3)


def test_ema_warm_up_follows_early_weights_then_settles_at_its_decay():
    """Effective decay min(decay, (1 + n) / (10 + n)) after n updates; the first update copies the weights."""
    weight = torch.nn.Parameter(torch.zeros(1))
    module = torch.nn.Module()
    module.weight = weight
    averaged = AveragedModel(module, avg_fn=warmup_ema(0.9), use_buffers=True)
    expected = None
    for n, value in enumerate([3.0, 1.0, -2.0, 5.0, 0.5] + [1.0] * 40):
        weight.data.fill_(value)
        averaged.update_parameters(module)
        if expected is None:
            expected = value
        else:
            rate = min(0.9, (1 + n) / (10 + n))  # n updates done before this one
            expected = rate * expected + (1 - rate) * value
        assert float(averaged.module.weight) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("weighting, field", [("flat", "masked_cross_entropy"), ("sequence", "sequence_cross_entropy")])
def test_training_weightings_are_the_reductions_they_name(weighting, field):
    toy = ToyDistribution(vocab=3, length=4, seed=2)
    batch = toy_batch(toy.sequences[:16])
    denoiser = ExactDenoiser(toy, mix_uniform=0.2)
    objective = MaskedDiffusion(train_weighting=weighting)
    loss = objective.loss(denoiser, batch, toy.mask_id, torch.Generator().manual_seed(3))
    # The same generator state gives the same times and masks: recompute the statistics directly.
    generator = torch.Generator().manual_seed(3)
    times = sample_times(16, antithetic=True, t_min=objective.t_min, generator=generator)
    stats = objective.stats_at(denoiser, batch, times, toy.mask_id, generator)
    assert float(loss.value) == pytest.approx(float(getattr(stats, field)), rel=1e-6)
    assert torch.allclose(loss.per_sequence, stats.per_sequence)  # the bound's terms whatever the weighting
