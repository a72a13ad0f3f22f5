"""Self-distillation through time (SDTT): a student learns in one sampler step what its teacher does in two, for
masked (absorbing) and uniform-state teachers.

Notation. The student takes one ancestral step t -> s on the uniform grid of S steps (t = 1 - k/S, s = t - 1/S);
the teacher takes two, t -> m -> s with m = t - 1/(2S), on the grid of 2S steps. An ancestral step u -> v reveals
each masked position with probability r(u, v) = (alpha(v) - alpha(u)) / (1 - alpha(u)) (1 at the last step of a
grid), drawing its token from the denoiser's p(. | x_u); revealed positions never change.

The two-step target, for a position i masked in x_t. With a = r(t, m) and b = r(m, s), the teacher reveals i
- in the first half-step with probability a, its token drawn from p_T(. | x_t) (first call);
- else in the second with probability (1 - a) b, its token drawn from p_T(. | x_m) (second call), where x_m holds
  the tokens the first half-step revealed at other positions, drawn independently of what happened to i.
So i is revealed by s with probability a + (1 - a) b = r(t, s), because (1 - alpha(s)) / (1 - alpha(t)) is
(1 - alpha(m)) / (1 - alpha(t)) times (1 - alpha(s)) / (1 - alpha(m)) (at a grid's last step both sides are 1):
exactly the student's reveal probability. Which positions are revealed is therefore matched for free; what the
student must learn is the law of the token given that it is revealed by s:

    P_T(x_s^i = v | revealed by s, x_t) = w p_T(v | x_t) + (1 - w) E[ p_T(v | x_m) | x_m^i = MASK ],
    w = a / r(t, s) = (alpha(m) - alpha(t)) / (alpha(s) - alpha(t))   (1/2 for the log-linear schedule).

The point mass that a position revealed in the first half-step puts on its token is, averaged over that draw, the
first call's distribution: it enters in closed form with weight w. (A per-draw target with a point mass on each
token the draw revealed and the second call's distribution elsewhere weights the first call by a, the probability
of that reveal, instead of w, its probability given a reveal by s.) The expectation
over x_m is estimated with one draw of the teacher's first half-step, fed back as context to the second call.
Whether i itself is revealed in that draw is independent of the other positions' draws, so the same x_m serves
every i; a position the draw revealed would need a second call with itself masked, so it is left out of the loss
(an unbiased thinning: which positions are left out does not depend on any token).

Per draw the target T_i = w p_T(. | x_t) + (1 - w) p_T(. | x_m) is a distribution and E[T_i] is the teacher's
two-step law. Forward KL is linear in T, so its optimum is exactly that law; reverse KL's is the normalised
geometric mean exp(E log T_i), a little sharper (mode-seeking).

What one step cannot learn: positions revealed in the same step are drawn independently given x_t, by student and
teacher alike, and no per-position law correlates them. Distillation removes the gap between the teacher's one-call
and two-call predictions; for an exact denoiser there is none (up to terms in a^2, from two other positions revealed
in the same half-step), so a student distilled from it samples at S steps as the denoiser itself does.

Uniform-state teachers. A step u -> v of uniform-state diffusion draws every position i, independently given x_u,
from q(x_v^i | x_u^i, x0 = x_theta(. | x_u)) (`Uniform.posterior`): nothing is revealed, any token may change, so
the student's one step t -> s and the teacher's two, t -> m -> s, are laws over x_s^i itself and the target is the
teacher's: P_T(x_s^i = v | x_t) = E[ q(x_s^i = v | x_m^i, x0 = x_theta_T(. | x_m)) ], x_m drawn by the teacher's
first half-step. Per draw the target is the second call's step law at one draw of x_m, the same x_m for every i
(x_m^i included: given x_m the law of x_s^i averages over x_m to the two-step law, for each i at once), so no
position is left out; the first call enters only through that draw, there is no closed-form share. The student's
prediction is the step law of its own x_theta at x_t: where the two-step law is the step law of some x_theta (on
the toy it is) the student can match it exactly, elsewhere it gets the nearest one. The same limit holds:
positions drawn in the same step are independent given x_t, and for the exact denoiser the two-step law is nearly
its one-step law, so distillation gains where a network's one and two calls disagree, not where the sampler's few
steps factorise a joint law.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ..batch import Batch
from ..denoiser import Bidirectional, Denoiser, DenoiserInput
from ..errors import UserInputError
from ..noising import NoisingProcess, Uniform
from ..process import stratified_uniforms
from ..schedules import NoiseSchedule
from .base import Objective
from .divergences import DIVERGENCES
from .masked_diffusion import MaskedDiffusion
from .uniform_diffusion import UniformDiffusion


class TwoSteps(NamedTuple):
    """One student step per row and the teacher's two half-steps over it; every field (B,) float64."""

    t: Tensor
    middle: Tensor
    end: Tensor
    """s: the student's step ends here, exactly 0 at a grid's last step (as the sampler's does)."""
    first_reveal: Tensor
    """a = r(t, m): the absorbing teacher's reveal probability in its first half-step."""
    first_weight: Tensor
    """w = a / r(t, s): the share of the first call in the absorbing target."""


def two_steps(index: Tensor, student_steps: int, schedule: NoiseSchedule) -> TwoSteps:
    """The k-th step (index (B,) long) of a student with `student_steps` steps, split in two for the teacher."""
    t = 1.0 - index.double() / student_steps
    middle = t - 0.5 / student_steps
    last = index == student_steps - 1
    s = torch.where(last, 0.0, t - 1.0 / student_steps)
    masked_at = schedule.mask_probability
    first = 1.0 - masked_at(middle) / masked_at(t)
    second = torch.where(last, 1.0, 1.0 - masked_at(s) / masked_at(middle))
    both = first + (1.0 - first) * second
    return TwoSteps(t, middle, s, first, first / both)


class StepProcess(ABC):
    """What distillation needs from an objective whose sampler takes steps: noising at a time, a call, the law of
    the student's one step and the teacher's two-step target for it.

    Masked diffusion and uniform-state diffusion noise through their `NoisingProcess` and call the network
    bidirectionally. Block diffusion would noise one block per row at time t, with the earlier blocks clean as
    context, and call the network with its own attention pattern; it is added by a subclass listed in
    `STEP_PROCESSES`.
    """

    def __init__(self, objective: Objective, noising: NoisingProcess) -> None:
        self.schedule: NoiseSchedule = objective.schedule
        self.noising = noising

    def noise(self, batch: Batch, t: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """x_t (B, L) at times t (B,) and the positions (B, L) the loss scores."""
        return self.noising.corrupt(batch.input_ids, t, self.schedule, maskable=batch.maskable, generator=generator)

    def call(self, network: Denoiser, tokens: Tensor, batch: Batch, t: Tensor, score_at: Tensor) -> Tensor:
        """log p(x0 | tokens) (N, V) at the `score_at` (B, L) positions, row-major, float32."""
        inputs = DenoiserInput(
            tokens, Bidirectional(batch.attention_mask), t=t.float(), class_labels=batch.class_labels, score_at=score_at
        )
        return self.noising.log_probs(network(inputs))  # (N, V)

    @abstractmethod
    def student_law(self, student: Denoiser, batch: Batch, tokens: Tensor, scored: Tensor, steps: TwoSteps) -> Tensor:
        """log of what the student's one step t -> s draws (N, V) at the `scored` (B, L) positions of x_t."""

    @abstractmethod
    def target(
        self,
        teacher: Denoiser,
        batch: Batch,
        tokens: Tensor,
        scored: Tensor,
        steps: TwoSteps,
        generator: torch.Generator | None = None,
        middle_tokens: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """log T (N, V) at the `scored` (B, L) positions of `tokens` (x_t), and the positions (B, L) kept in the loss.

        The teacher's first half-step is drawn here unless `middle_tokens` (x_m, (B, L)) gives its outcome.
        """


class MaskedDiffusionSteps(StepProcess):
    """The student's step reveals as the teacher's two do; it learns the law of a revealed token (module docstring)."""

    def student_law(self, student: Denoiser, batch: Batch, tokens: Tensor, scored: Tensor, steps: TwoSteps) -> Tensor:
        return self.call(student, tokens, batch, steps.t, scored)

    def target(
        self,
        teacher: Denoiser,
        batch: Batch,
        tokens: Tensor,
        scored: Tensor,
        steps: TwoSteps,
        generator: torch.Generator | None = None,
        middle_tokens: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """w p_T(. | x_t) + (1 - w) p_T(. | x_m); a position the first half-step revealed is left out."""
        first = self.call(teacher, tokens, batch, steps.t, scored)  # (N, V)
        if middle_tokens is None:
            middle_tokens = first_half_step(tokens, scored, first, steps.first_reveal, generator)
        second = self.call(teacher, middle_tokens, batch, steps.middle, scored)  # (N, V)
        weight = per_position(steps.first_weight, scored).float()  # (N, 1)
        target = torch.logaddexp(weight.log() + first, torch.log1p(-weight) + second)  # (N, V)
        return target, scored & (middle_tokens == tokens)


def first_half_step(
    tokens: Tensor, masked: Tensor, first: Tensor, reveal: Tensor, generator: torch.Generator | None
) -> Tensor:
    """The teacher's ancestral step t -> m: each masked position revealed with probability `reveal` (B,) of its row,
    its token drawn (float64) from the first call's log-probs `first` (N, V)."""
    if first.shape[0] == 0:
        return tokens
    u = torch.rand(tokens.shape, generator=generator, device=tokens.device, dtype=torch.float64)  # (B, L)
    revealed = masked & (u < reveal[:, None])  # (B, L)
    drawn = torch.multinomial(first.double().exp(), 1, generator=generator).squeeze(-1)  # (N,)
    return torch.where(revealed, torch.zeros_like(tokens).masked_scatter(masked, drawn), tokens)


class UniformDiffusionSteps(StepProcess):
    """The student's step draws every position from its posterior t -> s; it learns the teacher's two-step law of
    that draw (module docstring, "Uniform-state teachers")."""

    noising: Uniform

    def student_law(self, student: Denoiser, batch: Batch, tokens: Tensor, scored: Tensor, steps: TwoSteps) -> Tensor:
        predicted = self.call(student, tokens, batch, steps.t, scored)  # (N, V)
        return self.step_law(predicted, tokens[scored], scored, steps.t, steps.end)

    def target(
        self,
        teacher: Denoiser,
        batch: Batch,
        tokens: Tensor,
        scored: Tensor,
        steps: TwoSteps,
        generator: torch.Generator | None = None,
        middle_tokens: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The teacher's second half-step law at one draw x_m of its first; every scored position is kept."""
        if middle_tokens is None:
            first = self.call(teacher, tokens, batch, steps.t, scored)  # (N, V)
            law = self.step_law(first, tokens[scored], scored, steps.t, steps.middle)  # (N, V)
            middle_tokens = tokens.clone()
            if law.shape[0]:
                middle_tokens[scored] = torch.multinomial(law.double().exp(), 1, generator=generator).squeeze(-1)
        second = self.call(teacher, middle_tokens, batch, steps.middle, scored)  # (N, V)
        return self.step_law(second, middle_tokens[scored], scored, steps.middle, steps.end), scored

    def step_law(self, log_probs: Tensor, tokens: Tensor, scored: Tensor, start: Tensor, end: Tensor) -> Tensor:
        """log q(x_end | x_start = tokens, x0 = x_theta) (N, V) float32, normalised: log_probs (N, V) the denoiser's
        log x_theta at the `scored` (B, L) positions, tokens (N,) theirs, start and end (B,) each row's times."""
        alpha = self.schedule.alpha
        unnormalised = self.noising.posterior(
            log_probs, tokens, per_position(alpha(start), scored), per_position(alpha(end), scored)
        )  # (N, V) float64
        return torch.log_softmax(unnormalised, dim=-1).float()


def per_position(per_row: Tensor, scored: Tensor) -> Tensor:
    """A value per row (B,) repeated at each of its `scored` (B, L) positions: (N, 1), row-major."""
    return per_row[:, None].expand(scored.shape)[scored][:, None]


STEP_PROCESSES: dict[type[Objective], type[StepProcess]] = {
    MaskedDiffusion: MaskedDiffusionSteps,
    UniformDiffusion: UniformDiffusionSteps,
}
"""Objectives whose samplers take steps -> how distillation noises, calls and builds targets for them."""


def step_process(objective: Objective, noising: NoisingProcess) -> StepProcess:
    """The step process of `objective` (its models noised by `noising`); a one-line error for an objective whose
    sampler takes no steps."""
    for kind, process in STEP_PROCESSES.items():
        if isinstance(objective, kind):
            return process(objective, noising)
    raise UserInputError(
        f"the teacher's objective, {type(objective).__name__}, takes no diffusion steps: distillation needs a teacher "
        f"trained with {' or '.join(kind.__name__ for kind in STEP_PROCESSES)}"
    )


class DistillationLoss(NamedTuple):
    value: Tensor
    """Scalar: the mean divergence over the positions kept."""
    scored: Tensor
    """(B, L) bool: the positions kept (absorbing: masked at t and left masked by the teacher's first half-step;
    uniform: every maskable one)."""


@dataclass(frozen=True)
class StepDistillation:
    """The SDTT loss: per scored position, a divergence between the student's one-step law at x_t and the teacher's
    two-step target (module docstring); the student's steps are drawn uniformly from its grid."""

    divergence: str = "reverse-kl"
    """One of `DIVERGENCES`: reverse-kl (the paper's), forward-kl, total-variation, mse-log-probs."""

    def __post_init__(self) -> None:
        if self.divergence not in DIVERGENCES:
            raise UserInputError(f"divergence {self.divergence!r} is unknown; choose from {', '.join(DIVERGENCES)}")

    def loss(
        self,
        student: Denoiser,
        teacher: Denoiser,
        batch: Batch,
        *,
        process: StepProcess,
        student_steps: int,
        generator: torch.Generator | None = None,
    ) -> DistillationLoss:
        device = batch.input_ids.device
        offset = torch.rand((), generator=generator, device=device, dtype=torch.float64)
        index = (stratified_uniforms(offset, batch.size) * student_steps).long()  # (B,) stratified over the grid
        steps = two_steps(index, student_steps, process.schedule)
        tokens, scored = process.noise(batch, steps.t, generator)
        with torch.no_grad():
            target, kept = process.target(teacher, batch, tokens, scored, steps, generator)
        predicted = process.student_law(student, batch, tokens, scored, steps)  # (N, V)
        values = DIVERGENCES[self.divergence](predicted, target)  # (N,)
        keep = kept[scored].to(values.dtype)  # (N,)
        return DistillationLoss((values * keep).sum() / keep.sum().clamp_min(1.0), kept)
