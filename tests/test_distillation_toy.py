"""A student distilled from the exact toy denoiser, round after round, samples at its step count with the exact
sampler's law at that step count; sampling laws are computed exactly by enumerating the reverse process."""

import copy
import itertools
import math

import pytest
import torch
from toy import ExactDenoiser, ToyDistribution, toy_batch

from discrete_diff.denoiser import Bidirectional, DenoiserInput, select_scored
from discrete_diff.noising import Absorbing
from discrete_diff.objectives import MaskedDiffusion
from discrete_diff.objectives.distillation import MaskedDiffusionSteps, StepDistillation
from discrete_diff.sampling import Ancestral, StepPlan, run_sampler
from discrete_diff.schedules import LogLinearSchedule

pytestmark = pytest.mark.usefixtures("one_thread")

TOY = ToyDistribution(vocab=3, length=3, seed=3)
SCHEDULE = LogLinearSchedule()
COUNT = 20000
# 27 outcomes, 20,000 samples: an exact sampler's expected TV is about 0.012 (as in test_sampling_exactness).
TV_BOUND = 0.03
STATES = list(itertools.product(range(TOY.vocab + 1), repeat=TOY.length))


class TableStudent(torch.nn.Module):
    """One row of logits per possible input: the most flexible time-independent denoiser of the toy."""

    time_conditioned = False

    def __init__(self, denoiser: torch.nn.Module) -> None:
        super().__init__()
        with torch.no_grad():
            logits = denoiser(DenoiserInput(torch.tensor(STATES), Bidirectional()))  # (S, L, V + 1)
        self.table = torch.nn.Parameter(logits.clamp_min(-30.0).masked_fill(torch.isinf(logits), -math.inf))

    def forward(self, inputs: DenoiserInput) -> torch.Tensor:
        powers = (TOY.vocab + 1) ** torch.arange(TOY.length - 1, -1, -1)
        return select_scored(self.table[(inputs.ids * powers).sum(-1)], inputs)  # (B, L, V + 1)


def sampler_law(denoiser, steps: int) -> torch.Tensor:
    """The exact law of ancestral sampling at `steps` steps from all-[MASK], by enumerating every reveal."""
    with torch.no_grad():
        probs = torch.softmax(denoiser(DenoiserInput(torch.tensor(STATES), Bidirectional())).double(), -1)
    probs = dict(zip(STATES, probs[..., : TOY.vocab], strict=True))
    law = {(TOY.mask_id,) * TOY.length: 1.0}
    for index in range(steps):
        reveal = Ancestral.reveal_probability(StepPlan(index, steps, torch.ones(1, 1, dtype=torch.bool)), SCHEDULE)
        following: dict[tuple, float] = {}
        for row, weight in law.items():
            masked = [i for i, token in enumerate(row) if token == TOY.mask_id]
            for chosen in itertools.product((False, True), repeat=len(masked)):
                p_chosen = weight * math.prod(reveal if c else 1 - reveal for c in chosen)
                if p_chosen == 0:
                    continue
                revealed = [i for i, c in zip(masked, chosen, strict=True) if c]
                for tokens in itertools.product(range(TOY.vocab), repeat=len(revealed)):
                    new, p = list(row), p_chosen
                    for i, v in zip(revealed, tokens, strict=True):
                        new[i], p = v, p * float(probs[row][i, v])
                    following[tuple(new)] = following.get(tuple(new), 0.0) + p
        law = following
    result = torch.zeros(len(TOY.probs), dtype=torch.float64)
    for row, p in law.items():
        result[TOY.index(torch.tensor(row))] += p
    return result


def sample_tv(denoiser, steps: int, reference: torch.Tensor) -> float:
    tokens = torch.full((COUNT, TOY.length), TOY.mask_id)
    samples = run_sampler(
        denoiser, tokens, mask_id=TOY.mask_id, strategy=Ancestral(), num_steps=steps, schedule=SCHEDULE,
        generator=torch.Generator().manual_seed(1),
    ).tokens  # fmt: skip
    counts = torch.bincount(TOY.index(samples), minlength=len(TOY.probs)).double()
    return 0.5 * float((counts / COUNT - reference).abs().sum())


def distil(student, teacher, student_steps: int, divergence: str, updates: int = 300) -> None:
    """One round: the student learns from the frozen teacher on data drawn from the toy distribution."""
    generator = torch.Generator().manual_seed(student_steps)
    optimizer = torch.optim.Adam(student.parameters(), lr=0.05)
    loss = StepDistillation(divergence)
    process = MaskedDiffusionSteps(MaskedDiffusion(SCHEDULE), Absorbing(TOY.mask_id))
    for _ in range(updates):
        x0 = TOY.sequences[torch.multinomial(TOY.probs, 512, replacement=True, generator=generator)]
        value = loss.loss(
            student, teacher, toy_batch(x0), process=process, student_steps=student_steps, generator=generator
        ).value
        optimizer.zero_grad()
        value.backward()
        optimizer.step()


@pytest.mark.parametrize("divergence", ["reverse-kl", "forward-kl"])
def test_student_distilled_from_the_exact_denoiser_keeps_its_sampling_law(divergence):
    exact = ExactDenoiser(TOY)
    # A copy of the teacher that has drifted (half uniform), so that the test sees the loss pull it back.
    student = TableStudent(ExactDenoiser(TOY, mix_uniform=0.5))
    eight, four = sampler_law(exact, 8), sampler_law(exact, 4)
    assert sample_tv(student, 8, eight) > 4 * TV_BOUND

    distil(student, exact, student_steps=8, divergence=divergence)  # round 1: 16 teacher steps -> 8
    assert sample_tv(student, 8, eight) < TV_BOUND
    teacher = copy.deepcopy(student).requires_grad_(False)
    distil(student, teacher, student_steps=4, divergence=divergence)  # round 2: the student teaches, 8 -> 4
    assert sample_tv(student, 4, four) < TV_BOUND


def test_what_one_step_cannot_learn():
    """The limit of any per-position student: tokens revealed in the same step are drawn independently, so at few
    steps even the exact denoiser's law is off the data by far more than the Monte Carlo bound. Distillation keeps
    the exact sampler's law (above); it cannot make 4 steps as good as 16."""
    distances = {
        steps: 0.5 * float((sampler_law(ExactDenoiser(TOY), steps) - TOY.probs).abs().sum()) for steps in (4, 16, 64)
    }
    assert distances[4] > 2 * TV_BOUND and distances[64] < TV_BOUND / 2
    assert distances[4] > 3 * distances[16]  # the error halves with each doubling of the steps
