"""The distillation target is the teacher's two-step law, checked by enumerating the teacher's two ancestral steps on
the toy distribution; the half-steps compose to the student's step; the divergences are what they say."""

import itertools
import math

import pytest
import torch
from toy import ExactDenoiser, ToyDistribution, toy_batch

from discrete_diff.denoiser import Bidirectional, DenoiserInput, select_scored
from discrete_diff.errors import UserInputError
from discrete_diff.noising import Absorbing
from discrete_diff.objectives import Autoregressive, MaskedDiffusion
from discrete_diff.objectives.distillation import MaskedDiffusionSteps, StepDistillation, step_process, two_steps
from discrete_diff.objectives.divergences import DIVERGENCES
from discrete_diff.sampling import Ancestral, StepPlan
from discrete_diff.schedules import CosineSchedule, LogLinearSchedule, PolynomialSchedule

pytestmark = pytest.mark.usefixtures("one_thread")

TOY = ToyDistribution(vocab=3, length=3, seed=3)
M = TOY.mask_id


class Hedging(torch.nn.Module):
    """The exact conditionals mixed with uniform, the more so the more is masked: a teacher whose two calls disagree
    with its one call (its predictions after a reveal do not average to its prediction before), so that the target
    differs from the first call's prediction."""

    time_conditioned = False

    def forward(self, inputs):
        masked_share = (inputs.ids == M).double().mean(-1)[:, None, None]  # (B, 1, 1)
        probs = (1 - 0.8 * masked_share) * TOY.conditionals(inputs.ids) + 0.8 * masked_share / TOY.vocab
        logits = torch.cat((probs.log(), torch.full_like(probs[..., :1], -math.inf)), -1).float()  # (B, L, V + 1)
        return select_scored(logits, inputs)


TEACHER = Hedging()


def ancestral_reveal(index: int, count: int, schedule) -> float:
    return Ancestral.reveal_probability(StepPlan(index, count, torch.ones(1, 1, dtype=torch.bool)), schedule)


def teacher_probs(row: tuple[int, ...]) -> torch.Tensor:
    return torch.softmax(TEACHER(toy_input(row)).double()[0, :, : TOY.vocab], dim=-1)  # (L, V)


def toy_input(row):
    return DenoiserInput(torch.tensor([row]), Bidirectional())


def outcomes(row: tuple[int, ...], reveal: float, probs: torch.Tensor):
    """Every result of one ancestral step from `row` with its probability: (new row, probability)."""
    masked = [i for i, token in enumerate(row) if token == M]
    for chosen in itertools.product((False, True), repeat=len(masked)):
        weight = math.prod(reveal if c else 1.0 - reveal for c in chosen)
        revealed = [i for i, c in zip(masked, chosen, strict=True) if c]
        for tokens in itertools.product(range(TOY.vocab), repeat=len(revealed)):
            new, p = list(row), weight
            for i, v in zip(revealed, tokens, strict=True):
                new[i], p = v, p * float(probs[i, v])
            if p > 0:
                yield tuple(new), p


def two_step_law(row, first, second):
    """P(x_s^i = v, revealed by s) (L, V) by enumerating both of the teacher's steps."""
    law = torch.zeros(TOY.length, TOY.vocab, dtype=torch.float64)
    for middle, p_middle in outcomes(row, first, teacher_probs(row)):
        for end, p_end in outcomes(middle, second, teacher_probs(middle)):
            for i in range(TOY.length):
                if row[i] == M and end[i] != M:
                    law[i, end[i]] += p_middle * p_end
    return law


CASES = [((M, M, M), 2, 0), ((M, M, M), 4, 1), ((0, M, M), 2, 1), ((M, 2, M), 8, 5)]
"""(x_t, student steps, step index): from the first step of a grid to its last (where everything is revealed)."""


@pytest.mark.parametrize("row, steps, index", CASES)
def test_target_is_the_teachers_two_step_law(row, steps, index):
    schedule = LogLinearSchedule()
    first, second = (ancestral_reveal(2 * index + j, 2 * steps, schedule) for j in (0, 1))
    law = two_step_law(row, first, second)
    revealed = law.sum(-1)  # (L,) P(revealed by s)
    masked = torch.tensor([[token == M for token in row]])
    for i in range(TOY.length):  # the student's one step reveals exactly as often as the teacher's two
        assert float(revealed[i]) == pytest.approx(ancestral_reveal(index, steps, schedule) if row[i] == M else 0)
    truth = law[masked[0]] / revealed[masked[0], None]  # (N, V) the token's law given a reveal by s
    p1 = teacher_probs(row)[masked[0]]
    assert (truth - p1).abs().max() > 1e-3  # the calls disagree: p1 alone would miss by 1,000x the tolerance below

    process = MaskedDiffusionSteps(MaskedDiffusion(schedule), Absorbing(M))
    plan = two_steps(torch.tensor([index]), steps, schedule)
    tokens = torch.tensor([row])
    expected, kept = torch.zeros_like(truth), torch.zeros(masked.sum(), dtype=torch.float64)
    for middle, p in outcomes(row, first, teacher_probs(row)):  # the first half-step, every outcome given
        target, scored = process.target(
            TEACHER, toy_batch(tokens), tokens, masked, plan, middle_tokens=torch.tensor([middle])
        )
        on = scored[masked].double()  # (N,)
        expected += p * on[:, None] * target.double().exp()[:, : TOY.vocab]
        kept += p * on
    assert torch.allclose(kept, torch.full_like(kept, 1.0 - first))  # left out only when revealed at m
    assert torch.allclose(expected / kept[:, None], truth, atol=1e-6)


def test_drawn_half_step_gives_the_same_target_on_average():
    """The whole target with the first half-step drawn: its mean over 40,000 draws is the enumerated law."""
    row, steps, index, count = (M, M, M), 2, 0, 40000
    schedule = LogLinearSchedule()
    first, second = (ancestral_reveal(2 * index + j, 2 * steps, schedule) for j in (0, 1))
    law = two_step_law(row, first, second)
    truth = law / law.sum(-1, keepdim=True)  # (L, V)
    tokens = torch.tensor([row] * count)
    masked = tokens == M
    plan = two_steps(torch.full((count,), index), steps, schedule)
    process = MaskedDiffusionSteps(MaskedDiffusion(schedule), Absorbing(M))
    target, scored = process.target(
        TEACHER, toy_batch(tokens), tokens, masked, plan, generator=torch.Generator().manual_seed(0)
    )
    probs = target.double().exp()[:, : TOY.vocab].reshape(count, TOY.length, TOY.vocab)
    on = scored.double()  # (B, L)
    mean = (probs * on[..., None]).sum(0) / on.sum(0)[:, None]  # (L, V)
    # Each entry is a mean of ~36,000 numbers in [0, 1] (std <= 0.5 / sqrt(36,000) = 0.0026): 0.015 is 6 sigma.
    assert (mean - truth).abs().max() < 0.015
    assert float(on.mean()) == pytest.approx(1.0 - first, abs=0.01)


@pytest.mark.parametrize("schedule", [LogLinearSchedule(), CosineSchedule(), PolynomialSchedule(3.0)], ids=repr)
@pytest.mark.parametrize("steps", [1, 2, 8, 256])
def test_half_steps_compose_to_the_students_step(schedule, steps):
    index = torch.arange(steps)
    plan = two_steps(index, steps, schedule)
    for k in range(steps):
        first, second = (ancestral_reveal(2 * k + j, 2 * steps, schedule) for j in (0, 1))
        assert float(plan.first_reveal[k]) == pytest.approx(first, rel=1e-9)
        student = ancestral_reveal(k, steps, schedule)
        assert first + (1 - first) * second == pytest.approx(student, rel=1e-9)
        assert float(plan.first_weight[k]) == pytest.approx(first / student, rel=1e-9)
    if isinstance(schedule, LogLinearSchedule) and steps > 1:  # equal halves of alpha: w = 1/2 before the last step
        assert torch.allclose(plan.first_weight[:-1], torch.full((steps - 1,), 0.5, dtype=torch.float64))


def test_student_steps_are_stratified_over_the_grid():
    """Every step of an 8-step grid is drawn equally often in a batch of 64 (antithetic draws)."""
    toy = ToyDistribution(vocab=3, length=3, seed=0)
    distillation = StepDistillation("forward-kl")
    seen = []

    class Recorder(ExactDenoiser):
        def forward(self, inputs):
            seen.append(inputs.t.clone())
            return super().forward(inputs)

    x0 = toy.sequences[torch.randint(len(toy.sequences), (64,), generator=torch.Generator().manual_seed(0))]
    process = MaskedDiffusionSteps(MaskedDiffusion(), Absorbing(toy.mask_id))
    distillation.loss(Recorder(toy), ExactDenoiser(toy), toy_batch(x0), process=process, student_steps=8)
    counts = torch.bincount(((1 - seen[0].double()) * 8).round().long(), minlength=8)
    assert counts.tolist() == [8] * 8


def test_divergences_vanish_at_the_target_and_only_there():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=generator)
    logits[:, -1] = -math.inf  # the [MASK] column: outside the support
    student, other = (
        torch.log_softmax(logits, -1),
        torch.log_softmax(logits + torch.randn(5, 4, generator=generator), -1),
    )
    for name, divergence in DIVERGENCES.items():
        assert torch.allclose(divergence(student, student), torch.zeros(5), atol=1e-6), name
        assert (divergence(student, other) > 1e-4).all(), name
    p, q = torch.distributions.Categorical(logits=student[:, :3]), torch.distributions.Categorical(logits=other[:, :3])
    assert torch.allclose(DIVERGENCES["reverse-kl"](student, other), torch.distributions.kl_divergence(p, q))
    assert torch.allclose(DIVERGENCES["forward-kl"](student, other), torch.distributions.kl_divergence(q, p))
    assert torch.allclose(DIVERGENCES["total-variation"](student, other), 0.5 * (p.probs - q.probs).abs().sum(-1))


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_gradients_are_finite_with_the_mask_column(name):
    logits = torch.randn(3, 5, requires_grad=True)
    student = torch.log_softmax(logits.masked_fill(torch.arange(5) == 4, -math.inf), -1)
    target = torch.log_softmax(torch.randn(3, 5).masked_fill(torch.arange(5) == 4, -math.inf), -1)
    DIVERGENCES[name](student, target).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[:, :4].abs().sum() > 0


def test_unknown_divergence_and_stepless_teacher_are_one_line_errors():
    with pytest.raises(UserInputError, match="divergence 'kl' is unknown; choose from reverse-kl"):
        StepDistillation("kl")
    with pytest.raises(UserInputError, match="objective, Autoregressive, takes no diffusion steps"):
        step_process(Autoregressive(), Absorbing(M))
