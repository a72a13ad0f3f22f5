"""Step distillation of a uniform-state teacher: the target is the teacher's two-step law, checked by enumerating
both of its reverse steps on the toy (every middle state x_m, each step's law written as a mixture of the true
posteriors q(x_s | x_t, x0), independently of `Uniform.posterior`); a target off in time or short of a step misses
by far more than the tolerance; a student distilled from it samples at its steps with the enumerated law of the
teacher's two-step composition."""

import itertools
import math

import pytest
import torch
from toy import ToyDistribution, toy_batch
from uniform_toy import ExactUniformDenoiser

from discrete_diff.denoiser import Bidirectional, DenoiserInput, select_scored
from discrete_diff.noising import Uniform
from discrete_diff.objectives import UniformDiffusion
from discrete_diff.objectives.distillation import StepDistillation, UniformDiffusionSteps, step_process, two_steps
from discrete_diff.sampling import StepPlan
from discrete_diff.sampling.strategies import grid_times
from discrete_diff.schedules import CosineSchedule, LinearSchedule

pytestmark = pytest.mark.usefixtures("one_thread")

TOY = ToyDistribution(vocab=3, length=3, seed=3)
N = TOY.vocab
STATES = TOY.sequences  # (27, L): a uniform-state process never leaves the tokens
SCHEDULE = LinearSchedule()
PROCESS = UniformDiffusionSteps(UniformDiffusion(SCHEDULE), Uniform(TOY.mask_id, TOY.vocab + 1))


class Hedging(ExactUniformDenoiser):
    """The exact x_theta mixed with uniform, the more so the noisier: a teacher whose prediction after a step does
    not average to its prediction before, so that its two-step law differs from its one-call law."""

    def conditionals(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        share = 0.9 * t.double().sqrt()[:, None, None]  # (B, 1, 1)
        return (1 - share) * super().conditionals(xt, t) + share / N


TEACHER = Hedging(TOY, SCHEDULE)
TOLERANCE = 1e-6


def alpha(t: float) -> float:
    return float(SCHEDULE.alpha(torch.tensor(t, dtype=torch.float64)))


def stay(a: float, x: int, y: int) -> float:
    """q(y | x) of one position over a stretch with alpha ratio a: kept with probability a, else uniform."""
    return a * (x == y) + (1 - a) / N


def step_laws(denoiser, rows: torch.Tensor, t: float, s: float) -> torch.Tensor:
    """(B, L, V) the law of x_s at each position of each row x_t (B, L), one ancestral step t -> s: the true posteriors
    q(x_s | x_t, x0) mixed over x0 with weights x_theta(x0) q(x_t | x0), normalised (that mixture is the step)."""
    with torch.no_grad():
        logits = denoiser(DenoiserInput(rows, Bidirectional(), t=torch.full((len(rows),), t)))
    x_theta = torch.softmax(logits.double(), -1)[..., :N]  # (B, L, V)
    a_t, a_s = alpha(t), alpha(s)
    laws = torch.zeros_like(x_theta)
    for b, row in enumerate(rows.tolist()):
        for i, z in enumerate(row):
            weights = [float(x_theta[b, i, x0]) * stay(a_t, x0, z) for x0 in range(N)]
            for v in range(N):
                posteriors = [stay(a_t / a_s, v, z) * stay(a_s, x0, v) / stay(a_t, x0, z) for x0 in range(N)]
                laws[b, i, v] = sum(w * p for w, p in zip(weights, posteriors, strict=True)) / sum(weights)
    return laws


def outcomes(laws: torch.Tensor):
    """Every row one step can reach from positions with these laws (L, V), with its probability."""
    for row in itertools.product(range(N), repeat=TOY.length):
        yield row, math.prod(float(laws[i, v]) for i, v in enumerate(row))


def two_step_law(denoiser, row, t: float, m: float, s: float) -> torch.Tensor:
    """(L, V) P(x_s^i = v | x_t = row) after the teacher's steps t -> m -> s, every x_m enumerated."""
    first = step_laws(denoiser, torch.tensor([row]), t, m)[0]
    law = torch.zeros(TOY.length, N, dtype=torch.float64)
    for middle, p in outcomes(first):
        law += p * step_laws(denoiser, torch.tensor([middle]), m, s)[0]
    return law


def times(plan) -> tuple[float, float, float]:
    return float(plan.t[0]), float(plan.middle[0]), float(plan.end[0])


def target_mean(row, plan, middle_time: float | None = None) -> torch.Tensor:
    """E over the first half-step (enumerated) of the target given its outcome, (L, V); `middle_time` moves the
    teacher's second call and step (a negative control)."""
    t, m, _ = times(plan)
    if middle_time is not None:
        plan = plan._replace(middle=torch.tensor([middle_time], dtype=torch.float64))
    tokens, everywhere = torch.tensor([row]), torch.ones(1, TOY.length, dtype=torch.bool)
    mean = torch.zeros(TOY.length, N, dtype=torch.float64)
    for middle, p in outcomes(step_laws(TEACHER, tokens, t, m)[0]):
        target, kept = PROCESS.target(
            TEACHER, toy_batch(tokens), tokens, everywhere, plan, middle_tokens=torch.tensor([middle])
        )
        assert kept.all()  # nothing is left out: the target at every position is unbiased at once
        mean += p * target.double().exp()[:, :N]
    return mean


CASES = [((0, 0, 0), 1, 0), ((0, 1, 2), 2, 0), ((2, 1, 1), 4, 1), ((1, 0, 2), 8, 7)]
"""(x_t, student steps, step index): one step from t = 1 to 0, a first step, a middle one, a last one (to s = 0)."""


@pytest.mark.parametrize("row, steps, index", CASES)
def test_target_is_the_teachers_two_step_law(row, steps, index):
    plan = two_steps(torch.tensor([index]), steps, SCHEDULE)
    t, m, s = times(plan)
    law = two_step_law(TEACHER, row, t, m, s)
    one_call = step_laws(TEACHER, torch.tensor([row]), t, s)[0]
    # The student's one step with the teacher's network is the one-call law...
    tokens, everywhere = torch.tensor([row]), torch.ones(1, TOY.length, dtype=torch.bool)
    student = PROCESS.student_law(TEACHER, toy_batch(tokens), tokens, everywhere, plan).double().exp()[:, :N]
    assert torch.allclose(student, one_call, atol=TOLERANCE)
    # ...which misses the two-step law by over 1,000x the tolerance: the target must not be it.
    assert (law - one_call).abs().max() > 1e3 * TOLERANCE
    assert torch.allclose(target_mean(row, plan), law, atol=TOLERANCE)


def test_a_target_whose_middle_is_off_misses_the_law():
    """The negative control: the teacher's second call and step from a middle a tenth of a step late."""
    row, steps, index = (2, 1, 1), 4, 1
    plan = two_steps(torch.tensor([index]), steps, SCHEDULE)
    t, m, s = times(plan)
    law = two_step_law(TEACHER, row, t, m, s)
    assert (target_mean(row, plan, middle_time=m - 0.1 / steps) - law).abs().max() > 1e3 * TOLERANCE


def test_drawn_half_step_gives_the_same_target_on_average():
    """The whole target with the first half-step drawn: its mean over 40,000 draws is the enumerated law, within 5
    standard errors, and the one-call law lies more than 10 standard errors away (a first half-step drawn from the
    wrong law, t -> s or x_theta itself, misses by 50 and 200)."""
    row, steps, index, count = (0, 1, 2), 2, 1, 40000
    plan = two_steps(torch.full((count,), index), steps, SCHEDULE)
    law = two_step_law(TEACHER, row, *times(plan))
    tokens = torch.tensor([row] * count)
    target, kept = PROCESS.target(
        TEACHER, toy_batch(tokens), tokens, torch.ones_like(tokens, dtype=torch.bool), plan,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    draws = target.double().exp()[:, :N].reshape(count, TOY.length, N)
    mean, error = draws.mean(0), draws.std(0) / math.sqrt(count)  # (L, V) each
    assert kept.all() and ((mean - law).abs() < 5 * error).all()
    one_call = step_laws(TEACHER, torch.tensor([row]), *times(plan)[::2])[0]
    assert (law - one_call).abs().max() > 10 * error.max()


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=repr)
@pytest.mark.parametrize("steps", [1, 2, 8])
def test_half_steps_are_the_samplers_steps_at_twice_the_count(schedule, steps):
    plan = two_steps(torch.arange(steps), steps, schedule)
    for k in range(steps):
        t, m = grid_times(StepPlan(2 * k, 2 * steps, torch.ones(1, 1, dtype=torch.bool)))
        _, s = grid_times(StepPlan(2 * k + 1, 2 * steps, torch.ones(1, 1, dtype=torch.bool)))
        assert (float(plan.t[k]), float(plan.middle[k])) == pytest.approx((t, m), abs=1e-12)
        assert float(plan.end[k]) == (0.0 if k == steps - 1 else pytest.approx(s, abs=1e-12))  # the sampler's last: 0


def test_a_uniform_teacher_gets_the_uniform_step_process():
    process = step_process(UniformDiffusion(SCHEDULE), Uniform(TOY.mask_id, TOY.vocab + 1))
    assert isinstance(process, UniformDiffusionSteps)
    x0 = STATES[torch.multinomial(TOY.probs, 64, replacement=True, generator=torch.Generator().manual_seed(0))]
    loss = StepDistillation("forward-kl").loss(
        TEACHER, TEACHER, toy_batch(x0), process=process, student_steps=4, generator=torch.Generator().manual_seed(1)
    )
    assert loss.scored.all() and float(loss.value) > 1e-3  # every position scored; the teacher's calls disagree


def kernel(laws: torch.Tensor) -> torch.Tensor:
    """(S, S) P(x_s = row b | x_t = row a) of a step that draws positions independently with laws (S, L, V)."""
    joint = torch.ones(len(STATES), len(STATES), dtype=torch.float64)
    for i in range(TOY.length):
        joint = joint * laws[:, i, STATES[:, i]]
    return joint


def grid(steps: int, k: int) -> tuple[float, float, float]:
    return times(two_steps(torch.tensor([k]), steps, SCHEDULE))


def sampler_law(denoiser, steps: int) -> torch.Tensor:
    """(S,) the exact law of `steps` ancestral steps from uniform noise, every state enumerated."""
    law = torch.full((len(STATES),), 1.0 / len(STATES), dtype=torch.float64)
    for k in range(steps):
        t, _, s = grid(steps, k)
        law = law @ kernel(step_laws(denoiser, STATES, t, s))
    return law


def composed_law(teacher, steps: int) -> torch.Tensor:
    """(S,) the law of `steps` steps that each draw every position from the teacher's two-step law at it."""
    law = torch.full((len(STATES),), 1.0 / len(STATES), dtype=torch.float64)
    for k in range(steps):
        t, m, s = grid(steps, k)
        two = torch.einsum("ab,biv->aiv", kernel(step_laws(teacher, STATES, t, m)), step_laws(teacher, STATES, m, s))
        law = law @ kernel(two)
    return law


class TableStudent(torch.nn.Module):
    """One row of logits per (grid step, state): the most flexible denoiser of the toy at a fixed step count."""

    time_conditioned = True

    def __init__(self, denoiser, steps: int) -> None:
        super().__init__()
        self.steps = steps
        with torch.no_grad():
            tables = [denoiser(DenoiserInput(STATES, Bidirectional(), t=torch.full((len(STATES),), grid(steps, k)[0])))
                      for k in range(steps)]  # fmt: skip
        self.table = torch.nn.Parameter(torch.stack(tables).clamp_min(-30.0))  # (K, S, L, V + 1)

    def forward(self, inputs: DenoiserInput) -> torch.Tensor:
        step = ((1 - inputs.t.double()) * self.steps).round().long()  # (B,)
        logits = self.table[step, TOY.index(inputs.ids)]  # (B, L, V + 1)
        return select_scored(logits.masked_fill(torch.arange(N + 1) == N, -math.inf), inputs)


def tv(p: torch.Tensor, q: torch.Tensor) -> float:
    return 0.5 * float((p - q).abs().sum())


def test_a_distilled_student_samples_with_the_composed_law():
    """A student far from the teacher (90% uniform) distilled from it for 4 steps samples with the law of 4 steps
    of the teacher's two-step laws (enumerated), 8x closer than before: the loss pulls the student's one step onto
    the target."""
    steps, updates = 4, 200
    composed = composed_law(TEACHER, steps)
    student = TableStudent(ExactUniformDenoiser(TOY, SCHEDULE, mix_uniform=0.9), steps)
    before = tv(sampler_law(student, steps), composed)
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(student.parameters(), lr=0.1)
    decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda update: 1 - update / updates)
    for _ in range(updates):
        x0 = STATES[torch.multinomial(TOY.probs, 1024, replacement=True, generator=generator)]
        loss = StepDistillation("forward-kl").loss(
            student, TEACHER, toy_batch(x0), process=PROCESS, student_steps=steps, generator=generator
        )
        optimizer.zero_grad()
        loss.value.backward()
        optimizer.step()
        decay.step()
    after = tv(sampler_law(student, steps), composed)
    assert before > 0.1 and after < before / 8
