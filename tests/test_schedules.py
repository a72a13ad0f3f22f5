import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from discrete_diff.sampling.strategies import Ancestral, StepPlan
from discrete_diff.schedules import (
    CosineSchedule,
    LinearSchedule,
    LogLinearSchedule,
    PolynomialSchedule,
)

SCHEDULES = [
    LogLinearSchedule(1e-3),
    LogLinearSchedule(0.1),
    LinearSchedule(),
    CosineSchedule(),
    PolynomialSchedule(2.0),
    PolynomialSchedule(0.5),
]
grid = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_alpha_decreases_from_one_to_nearly_zero(schedule):
    alpha = schedule.alpha(grid)
    assert torch.all(alpha[1:] < alpha[:-1])
    assert float(schedule.alpha(torch.tensor(0.0))) == pytest.approx(1.0)
    assert float(schedule.alpha(torch.tensor(1.0, dtype=torch.float64))) <= 0.1 + 1e-12


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_alpha_prime_matches_finite_difference(schedule):
    h = 1e-6
    numeric = (schedule.alpha(grid + h) - schedule.alpha(grid - h)) / (2 * h)
    assert torch.allclose(schedule.alpha_prime(grid), numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_time_at_inverts_alpha(schedule):
    assert torch.allclose(schedule.time_at(schedule.alpha(grid)), grid, atol=1e-9)


@given(st.floats(min_value=1e-4, max_value=1.0), st.floats(min_value=0.0, max_value=0.5))
def test_log_linear_weight_is_one_over_t(t, eps):
    weight = LogLinearSchedule(eps).weight(torch.tensor(t, dtype=torch.float64))
    assert float(weight) == pytest.approx(1.0 / t, rel=1e-9)


def test_polynomial_and_cosine_weights_have_closed_forms():
    t = grid
    assert torch.allclose(PolynomialSchedule(3.0).weight(t), 3.0 / t)
    cosine = (math.pi / 2) * torch.sin(math.pi * t / 2) / (1 - torch.cos(math.pi * t / 2))
    assert torch.allclose(CosineSchedule().weight(t), cosine)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
@pytest.mark.parametrize("steps", [1, 3, 16])
def test_reverse_reveal_probabilities_track_the_schedule(schedule, steps):
    """Staying masked through steps 0..k must have probability (1 - alpha(s_k)) / (1 - alpha(1))."""
    still_masked = 1.0
    for k in range(steps):
        plan = StepPlan(k, steps, torch.ones(1, 1, dtype=torch.bool))
        still_masked *= 1.0 - Ancestral.reveal_probability(plan, schedule)
        s = torch.tensor(1.0 - (k + 1) / steps, dtype=torch.float64)
        expected = float((1 - schedule.alpha(s)) / (1 - schedule.alpha(torch.tensor(1.0, dtype=torch.float64))))
        assert still_masked == pytest.approx(expected, abs=1e-12)
    assert still_masked == 0.0
