"""The reverse process against closed forms: how many tokens each ancestral step reveals, when first-hitting
reveals them, and the distribution the exact denoiser's samples follow. With an exact time-independent denoiser
any one-token-at-a-time order reproduces the data, so only the reveal law itself can show a wrong reveal
probability or a wrong clock; each law has a negative control that must fail."""

import math

import pytest
import torch
from toy import ExactDenoiser, ToyDistribution

from discrete_diff.denoiser import DenoiserInput, select_scored
from discrete_diff.sampling import Ancestral, FirstHitting, run_sampler
from discrete_diff.schedules import CosineSchedule, LinearSchedule, LogLinearSchedule

ROWS, LENGTH, VOCAB = 4000, 8, 5
SCHEDULES = [LinearSchedule(), LogLinearSchedule(1e-3), CosineSchedule()]

pytestmark = pytest.mark.usefixtures("one_thread")


class UniformDenoiser(torch.nn.Module):
    """Every token equally likely: the reveal law does not depend on the denoiser."""

    time_conditioned = False

    def forward(self, inputs: DenoiserInput) -> torch.Tensor:
        logits = torch.zeros(*inputs.ids.shape, VOCAB + 1)
        logits[..., VOCAB] = -math.inf
        return select_scored(logits, inputs)


def masked_after_each_step(strategy, schedule, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked positions per row after every step (S, R), and the time each step reached (S, R)."""
    tokens = torch.full((ROWS, LENGTH), VOCAB)
    states: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    run_sampler(
        UniformDenoiser(), tokens, mask_id=VOCAB, strategy=strategy, num_steps=steps, schedule=schedule,
        generator=torch.Generator().manual_seed(0),
        on_step=lambda tokens, number, time: states.update({number: ((tokens == VOCAB).sum(-1), time.clone())}),
    )  # fmt: skip
    masked, times, previous = [], [], (torch.full((ROWS,), LENGTH), torch.ones(ROWS, dtype=torch.float64))
    for number in range(max(states) + 1):
        previous = states.get(number, previous)  # a step that changed nothing is not reported
        masked.append(previous[0])
        times.append(previous[1])
    return torch.stack(masked), torch.stack(times)


def binomial_pmf(n: int, p: float) -> torch.Tensor:
    return torch.tensor([math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)], dtype=torch.float64)


def worst_cell(counts: torch.Tensor, pmf: torch.Tensor) -> float:
    """Largest |observed - expected| frequency in standard errors over the outcomes 0..n of R draws; outcomes
    expected fewer than 5 times are pooled into one cell, so that every cell is about normal."""
    observed = torch.bincount(counts, minlength=len(pmf)).double() / len(counts)
    rare = pmf * len(counts) < 5
    observed = torch.cat((observed[~rare], observed[rare].sum()[None]))
    pmf = torch.cat((pmf[~rare], pmf[rare].sum()[None]))
    error = (pmf * (1 - pmf) / len(counts)).sqrt().clamp_min(1e-12)
    return float(((observed - pmf).abs() / error).max())


def ancestral_misfit(strategy, schedule, steps: int = 8) -> float:
    """Each step reveals Bin(L, (alpha(s) - alpha(t)) / (1 - alpha(1))) tokens of a fully masked start."""
    masked, _ = masked_after_each_step(strategy, schedule, steps)
    before = torch.cat((torch.full((1, ROWS), LENGTH), masked[:-1]))
    revealed = before - masked  # (S, R)
    worst = 0.0
    for k in range(steps):
        t, s = 1 - k / steps, (1 - (k + 1) / steps if k < steps - 1 else 0.0)
        alpha = lambda x: float(schedule.alpha(torch.tensor(x, dtype=torch.float64)))  # noqa: E731
        share = (alpha(s) - alpha(t)) / (1 - alpha(1.0))
        worst = max(worst, worst_cell(revealed[k], binomial_pmf(LENGTH, min(share, 1.0))))
    return worst


class WrongRevealProbability(Ancestral):
    """A plausible bug: alpha(s) - alpha(t), not divided by the mask probability 1 - alpha(t)."""

    @staticmethod
    def reveal_probability(plan, schedule):
        if plan.index == plan.count - 1:
            return 1.0
        t, s = 1 - plan.index / plan.count, 1 - (plan.index + 1) / plan.count
        return float(schedule.alpha(torch.tensor(s)) - schedule.alpha(torch.tensor(t)))


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_each_ancestral_step_reveals_a_binomial_number_of_tokens(schedule):
    assert ancestral_misfit(Ancestral(), schedule) < 5.0


def test_a_wrong_reveal_probability_fails_the_reveal_law():
    assert ancestral_misfit(WrongRevealProbability(), CosineSchedule()) > 20.0


def first_hitting_misfit(strategy, schedule) -> float:
    """The j-th reveal happens at the masking level of the j-th largest of L uniforms (times 1 - alpha(1)):
    P(level <= x) = P(at most j - 1 of L uniforms exceed x). Kolmogorov-Smirnov distance on a grid."""
    _, times = masked_after_each_step(strategy, schedule, LENGTH)
    levels = schedule.mask_probability(times) / schedule.mask_probability(torch.tensor(1.0, dtype=torch.float64))
    grid = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    worst = 0.0
    for j in range(1, LENGTH + 1):
        observed = (levels[j - 1][:, None] <= grid).double().mean(0)
        expected = sum(math.comb(LENGTH, i) * (1 - grid) ** i * grid ** (LENGTH - i) for i in range(j))
        worst = max(worst, float((observed - expected).abs().max()))
    return worst


class NonsenseClock(FirstHitting):
    """A plausible bug: scale the time, not the masking level (right only for a linear schedule)."""

    @staticmethod
    def next_time(time, first, schedule):
        return time * first


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_first_hitting_times_follow_the_order_statistics_of_the_reveal_levels(schedule):
    # Kolmogorov-Smirnov at 4,000 draws: 0.031 at the 0.1% level (over 8 reveals, about 1% for any one).
    assert first_hitting_misfit(FirstHitting(), schedule) < 0.035


def test_a_nonsense_clock_fails_the_first_hitting_law():
    assert first_hitting_misfit(NonsenseClock(), CosineSchedule()) > 0.1


def draw_samples(toy, steps, count, seed, cache=True, schedule=None):
    tokens = torch.full((count, toy.length), toy.mask_id)
    return run_sampler(
        ExactDenoiser(toy), tokens, mask_id=toy.mask_id, strategy=Ancestral(), num_steps=steps,
        schedule=schedule or LogLinearSchedule(), generator=torch.Generator().manual_seed(seed), cache=cache,
    )  # fmt: skip


@pytest.mark.parametrize("schedule", [LogLinearSchedule(), CosineSchedule(), LinearSchedule()], ids=repr)
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
