"""Self-distillation through time (SDTT): a student learns in one sampler step what its teacher does in two.

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
from ..process import forward_mask, stratified_uniforms, subs_log_probs
from ..schedules import NoiseSchedule
from .base import Objective
from .divergences import DIVERGENCES
from .masked_diffusion import MaskedDiffusion


class StepProcess(ABC):
    """What distillation needs from an objective whose sampler takes steps: noising at a time, and a call.

    Masked diffusion noises every maskable position and calls the network bidirectionally. Block diffusion would
    noise one block per row at time t, with the earlier blocks clean as context, and call the network with its
    own attention pattern; it is added by a subclass listed in `STEP_PROCESSES`.
    """

    schedule: NoiseSchedule

    @abstractmethod
    def noise(self, batch: Batch, t: Tensor, mask_id: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """x_t (B, L) and the positions it masks (B, L) at times t (B,)."""

    @abstractmethod
    def log_probs(
        self, network: Denoiser, tokens: Tensor, batch: Batch, t: Tensor, score_at: Tensor, mask_id: int
    ) -> Tensor:
        """SUBS log p(x0 | tokens) (N, V) at the `score_at` (B, L) positions, row-major, float32."""


class MaskedDiffusionSteps(StepProcess):
    def __init__(self, objective: MaskedDiffusion) -> None:
        self.schedule = objective.schedule

    def noise(self, batch: Batch, t: Tensor, mask_id: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        return forward_mask(
            batch.input_ids, t, self.schedule, maskable=batch.maskable, mask_id=mask_id, generator=generator
        )

    def log_probs(
        self, network: Denoiser, tokens: Tensor, batch: Batch, t: Tensor, score_at: Tensor, mask_id: int
    ) -> Tensor:
        inputs = DenoiserInput(
            tokens, Bidirectional(batch.attention_mask), t=t.float(), class_labels=batch.class_labels, score_at=score_at
        )
        return subs_log_probs(network(inputs), mask_id)  # (N, V)


STEP_PROCESSES: dict[type[Objective], type[StepProcess]] = {MaskedDiffusion: MaskedDiffusionSteps}
"""Objectives whose samplers take steps -> how distillation noises and calls for them."""


def step_process(objective: Objective) -> StepProcess:
    """The step process of `objective`; a one-line error for an objective whose sampler takes no steps."""
    for kind, process in STEP_PROCESSES.items():
        if isinstance(objective, kind):
            return process(objective)
    raise UserInputError(
        f"the teacher's objective, {type(objective).__name__}, takes no diffusion steps: distillation needs a teacher "
        f"trained with {' or '.join(kind.__name__ for kind in STEP_PROCESSES)}"
    )


class TwoSteps(NamedTuple):
    """One student step per row and the teacher's two half-steps over it; every field (B,) float64."""

    t: Tensor
    middle: Tensor
    first_reveal: Tensor
    """a = r(t, m): the teacher's reveal probability in its first half-step."""
    first_weight: Tensor
    """w = a / r(t, s): the share of the first call in the target."""


def two_steps(index: Tensor, student_steps: int, schedule: NoiseSchedule) -> TwoSteps:
    """The k-th step (index (B,) long) of a student with `student_steps` steps, split in two for the teacher."""
    t = 1.0 - index.double() / student_steps
    middle = t - 0.5 / student_steps
    s = t - 1.0 / student_steps
    masked_at = schedule.mask_probability
    first = 1.0 - masked_at(middle) / masked_at(t)
    second = torch.where(index == student_steps - 1, 1.0, 1.0 - masked_at(s) / masked_at(middle))
    both = first + (1.0 - first) * second
    return TwoSteps(t, middle, first, first / both)


class DistillationLoss(NamedTuple):
    value: Tensor
    """Scalar: the mean divergence over the scored positions."""
    scored: Tensor
    """(B, L) bool: positions masked at t that the teacher's first half-step left masked."""


@dataclass(frozen=True)
class StepDistillation:
    """The SDTT loss: per scored position, a divergence between the student's one-step prediction at x_t and the
    teacher's two-step target (module docstring); the student's steps are drawn uniformly from its grid."""

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
        mask_id: int,
        *,
        process: StepProcess,
        student_steps: int,
        generator: torch.Generator | None = None,
    ) -> DistillationLoss:
        device = batch.input_ids.device
        offset = torch.rand((), generator=generator, device=device, dtype=torch.float64)
        index = (stratified_uniforms(offset, batch.size) * student_steps).long()  # (B,) stratified over the grid
        steps = two_steps(index, student_steps, process.schedule)
        tokens, masked = process.noise(batch, steps.t, mask_id, generator)
        with torch.no_grad():
            target, scored = two_step_target(teacher, process, batch, tokens, masked, mask_id, steps, generator)
        predicted = process.log_probs(student, tokens, batch, steps.t, masked, mask_id)  # (N, V)
        per_position = DIVERGENCES[self.divergence](predicted, target)  # (N,)
        keep = scored[masked].to(per_position.dtype)  # (N,)
        return DistillationLoss((per_position * keep).sum() / keep.sum().clamp_min(1.0), scored)


def two_step_target(
    teacher: Denoiser,
    process: StepProcess,
    batch: Batch,
    tokens: Tensor,
    masked: Tensor,
    mask_id: int,
    steps: TwoSteps,
    generator: torch.Generator | None = None,
    middle_tokens: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """log T (N, V) at the `masked` (B, L) positions of `tokens` (x_t), and the scored positions (B, L).

    The teacher's first half-step is drawn here unless `middle_tokens` (x_m, (B, L)) gives its outcome.
    """
    first = process.log_probs(teacher, tokens, batch, steps.t, masked, mask_id)  # (N, V)
    if middle_tokens is None:
        middle_tokens = first_half_step(tokens, masked, first, steps.first_reveal, generator)
    second = process.log_probs(teacher, middle_tokens, batch, steps.middle, masked, mask_id)  # (N, V)
    weight = steps.first_weight[:, None].expand(masked.shape)[masked][:, None].float()  # (N, 1)
    target = torch.logaddexp(weight.log() + first, torch.log1p(-weight) + second)  # (N, V)
    return target, masked & (middle_tokens == tokens)


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
