"""Sampling strategies: each plans its steps and decides, from the tokens and p_theta(x0 | x_t), what to change.

The loop (loop.py) owns the network calls, the filters, caching and pinning; a strategy only sees the positions
a step may change (`StepPlan.active`: never a pinned one) and returns the new tokens. A strategy is a small frozen
dataclass of its own settings; the noise schedule comes from the model, through the context.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from ..noising import Absorbing, NoisingProcess
from ..schedules import NoiseSchedule
from .categorical import sample_categorical


@dataclass(frozen=True)
class StepPlan:
    """One step of a strategy's plan: the `index`-th of `count` steps of a phase, over the `active` positions."""

    index: int
    count: int
    active: Tensor
    """(B, L) bool: positions this step may reveal or re-mask (a subset of the unpinned ones)."""


@dataclass
class SamplerContext:
    """What a step needs besides tokens and probabilities; `time` (B,) float64 is the diffusion time reached.

    `uniforms` (B, L) float64 are the step's own random numbers, drawn by the loop for every step of the plan,
    skipped or not: a strategy takes every random choice from them except the tokens it reveals (drawn from
    `generator`, only at revealed positions), so cached and uncached runs draw identical samples.
    """

    mask_id: int
    generator: torch.Generator
    time: Tensor
    schedule: NoiseSchedule
    uniforms: Tensor | None = None
    process: NoisingProcess | None = None
    """How the model's tokens are noised; None: absorbing, with `mask_id` as [MASK]."""

    def __post_init__(self) -> None:
        self.process = self.process or Absorbing(self.mask_id)


class Strategy(ABC):
    """A reverse process: a plan of steps, and one step.

    `remasks` says whether a step can mask revealed tokens again; strategies that cannot are done as soon as
    nothing is masked, which lets the loop skip the network for the remaining steps. `follows_num_steps` is False
    for a strategy whose plan ignores the requested number of steps (first-hitting: one step per reveal).
    """

    remasks: ClassVar[bool] = False
    any_process: ClassVar[bool] = False
    """The strategy steps through its context's noising process, so it samples uniform-state models too (the others
    reveal [MASK] positions: absorbing only)."""

    @property
    def follows_num_steps(self) -> bool:
        return True

    def plan(self, num_steps: int, editable: Tensor, masked: Tensor) -> list[StepPlan]:
        """The steps for sequences whose `editable` positions (B, L) may change; `masked` (B, L) is where
        [MASK] is now. By default `num_steps` steps over all editable positions."""
        return [StepPlan(index, num_steps, editable) for index in range(num_steps)]

    def begin(self, plan: StepPlan, context: SamplerContext) -> None:
        """Before a step (and its network call): set `context.time` to the time it starts from."""
        context.time.fill_(grid_times(plan)[0])

    @abstractmethod
    def step(self, tokens: Tensor, log_probs: Tensor, plan: StepPlan, context: SamplerContext) -> Tensor:
        """tokens: (B, L) with mask_id at undecided positions; log_probs: (B, L, V) float64. Returns (B, L)."""


def reveal(tokens: Tensor, where: Tensor, log_probs: Tensor, generator: torch.Generator) -> Tensor:
    """Draw tokens at the `where` (B, L) positions from log_probs (B, L, V); other positions are kept."""
    if not where.any():
        return tokens
    tokens = tokens.clone()
    tokens[where] = sample_categorical(log_probs[where], generator)  # (N,) drawn for revealed slots only
    return tokens


def one_step_per_blank(editable: Tensor, masked: Tensor) -> list[StepPlan]:
    """A plan with as many steps as the most-masked sequence has editable blanks (B, L): room for one reveal each."""
    count = int((editable & masked).sum(-1).max()) if masked.numel() else 0
    return [StepPlan(index, count, editable) for index in range(count)]


def grid_times(plan: StepPlan) -> tuple[float, float]:
    """A uniform time grid over a phase: the step goes from t to s < t."""
    return 1.0 - plan.index / plan.count, 1.0 - (plan.index + 1) / plan.count


def alphas(schedule: NoiseSchedule, *times: float) -> list[float]:
    """alpha at each time, in float64."""
    return [float(schedule.alpha(torch.tensor(t, dtype=torch.float64))) for t in times]


@dataclass(frozen=True)
class Ancestral(Strategy):
    """The exact reverse step of the model's noising process from t to s < t on a uniform time grid.

    Absorbing: a masked position is revealed with probability (alpha(s) - alpha(t)) / (1 - alpha(t)), its token
    drawn from p_theta(x0 | x_t); revealed positions never change; the last step reveals everything. A process that
    revises (uniform) draws every active position from its own reverse step, so any of them may change until the last.
    """

    any_process = True

    @staticmethod
    def reveal_probability(plan: StepPlan, schedule: NoiseSchedule) -> float:
        if plan.index == plan.count - 1:
            return 1.0
        alpha_t, alpha_s = alphas(schedule, *grid_times(plan))
        return (alpha_s - alpha_t) / (1.0 - alpha_t)

    def step(self, tokens: Tensor, log_probs: Tensor, plan: StepPlan, context: SamplerContext) -> Tensor:
        process = context.process
        if process.revises:
            t, s = grid_times(plan)
            times = (t, 0.0 if plan.index == plan.count - 1 else s)  # the last step ends exactly at 0
            context.time.fill_(times[1])
            chosen, law = process.reverse_step(tokens, log_probs, plan.active, times, context.schedule)
            return reveal(tokens, chosen, law, context.generator)
        masked = process.undecided(tokens, plan.active)  # (B, L)
        context.time.fill_(grid_times(plan)[1])
        chosen = masked & (context.uniforms < self.reveal_probability(plan, context.schedule))
        return reveal(tokens, chosen, log_probs, context.generator)


@dataclass(frozen=True)
class FirstHitting(Strategy):
    """Jump straight to the next time a position is revealed: one reveal per sequence per network call, exact.

    With n masked positions at time t, each reveals independently at a time whose law is fixed by alpha: where
    1 - alpha(s) = (1 - alpha(t)) * u_i, u_i ~ U(0, 1). The first of them is the largest u_i, at a position
    uniform among the n, with max u_i distributed as u^(1/n) (Zheng et al. 2024). The plan has as many steps as
    the most-masked sequence has blanks.
    """

    @property
    def follows_num_steps(self) -> bool:
        return False

    def plan(self, num_steps: int, editable: Tensor, masked: Tensor) -> list[StepPlan]:
        return one_step_per_blank(editable, masked)

    def begin(self, plan: StepPlan, context: SamplerContext) -> None:
        if plan.index == 0:
            context.time.fill_(1.0)  # a phase (e.g. a block) starts fully masked; later steps follow the clock

    def step(self, tokens: Tensor, log_probs: Tensor, plan: StepPlan, context: SamplerContext) -> Tensor:
        masked = (tokens == context.mask_id) & plan.active  # (B, L)
        first, choice = context.uniforms.masked_fill(~masked, -math.inf).max(-1)  # (B,) each: the first reveal
        context.time = torch.where(masked.any(-1), self.next_time(context.time, first, context.schedule), context.time)
        chosen = torch.zeros_like(masked).scatter_(1, choice[:, None], True) & masked
        return reveal(tokens, chosen, log_probs, context.generator)

    @staticmethod
    def next_time(time: Tensor, first: Tensor, schedule: NoiseSchedule) -> Tensor:
        """The time of the first reveal: 1 - alpha(s) = (1 - alpha(t)) * (the largest of the masked u_i)."""
        return schedule.time_at(1.0 - schedule.mask_probability(time) * first)
