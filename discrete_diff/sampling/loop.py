"""The one sampling loop: call the denoiser, filter its logits, let the strategy step; reuse unchanged outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from ..denoiser import Bidirectional, Denoiser, DenoiserInput
from ..noising import Absorbing, NoisingProcess
from ..schedules import NoiseSchedule
from .filters import LogitFilter, apply_filters
from .guidance import Guidance
from .strategies import SamplerContext, Strategy
from .trajectory import Trajectory, TrajectoryRecorder

StepCallback = Callable[[Tensor, int, Tensor], None]
"""on_step(tokens (B, L), step index, time (B,)): called with the starting tokens (step -1, time 1) and after every
step that changed them, the frames a trajectory records. An exception it raises ends the run and propagates."""


@runtime_checkable
class StepWatcher(Protocol):
    """An on_step that is also told, just before each run's start call, which positions are given: a run of a
    uniform-state model starts with noise in its blanks, so the start's tokens alone cannot say."""

    def begin(self, pinned: Tensor, process: NoisingProcess) -> None:
        """pinned (B, L): the positions that never change; process: what the positions' changes mean."""

    def __call__(self, tokens: Tensor, step: int, time: Tensor) -> None: ...


@dataclass
class SamplingResult:
    tokens: Tensor
    """(B, L) final token ids, no [MASK] left."""
    network_calls: int
    """Forward passes of the denoiser (cached and skipped steps are free)."""
    trajectory: Trajectory | None = None
    """The sequence after every step that changed it, when recording was asked for."""


@torch.no_grad()
def run_sampler(
    denoiser: Denoiser,
    tokens: Tensor,
    *,
    mask_id: int,
    strategy: Strategy,
    num_steps: int,
    schedule: NoiseSchedule,
    filters: Sequence[LogitFilter] = (),
    attention_mask: Tensor | None = None,
    pinned: Tensor | None = None,
    class_labels: Tensor | None = None,
    guidance: Guidance | None = None,
    generator: torch.Generator | None = None,
    cache: bool = True,
    record: bool = False,
    on_step: StepCallback | None = None,
    process: NoisingProcess | None = None,
) -> SamplingResult:
    """Denoise `tokens` (B, L): positions holding mask_id are generated; `pinned` (B, L) positions never change.

    `pinned` defaults to every position not holding mask_id (a prompt's given tokens, padding). Unpinned
    positions that are not masked are revealed already: only a remasking strategy may change them.
    With `cache`, a step in which no token changed lets the next step reuse the previous network output (valid
    only for a time-independent denoiser: a time-conditioned one is called at every step), and steps left after
    everything is revealed are skipped. Caching changes no sample: every step draws its random numbers and sets
    its time whether it is skipped or not. The network sees the step's time t and `class_labels` (B,) if given.
    With `guidance`, each call also runs the unconditional rows (Guidance.predict; not where the scheduled w(t) is 0
    for every row) and the strategy sees the guided distribution at the step's time (guidance.py); the filters act
    on it.

    `process` (default: absorbing, [MASK] = mask_id) is how the model noises tokens: it draws the blanks' start
    (uniform noise for a uniform-state model) and says which positions stay undecided (for uniform: every unpinned
    one, to the last step; only strategies with `any_process` step through it).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    generator = generator or torch.Generator(device=tokens.device).manual_seed(0)
    attention = Bidirectional(attention_mask)
    process = process or Absorbing(mask_id)
    if process.revises and not strategy.any_process:
        raise ValueError(f"{type(strategy).__name__} reveals [MASK] positions; a {type(process).__name__} model "
                         "needs a strategy that steps through its process (ancestral)")  # fmt: skip
    pinned = tokens != mask_id if pinned is None else pinned
    if (pinned & (tokens == mask_id)).any():
        raise ValueError("a pinned position holds [MASK]; pinned positions must hold their given token")
    tokens = process.prior(tokens, tokens == mask_id, generator)  # (B, L) the blanks at t = 1
    reuse = cache and not getattr(denoiser, "time_conditioned", False)
    plans = strategy.plan(num_steps, ~pinned, process.undecided(tokens, ~pinned))
    time = torch.ones(tokens.shape[0], dtype=torch.float64, device=tokens.device)
    context = SamplerContext(mask_id, generator, time, schedule, process=process)
    recorder = TrajectoryRecorder(tokens, pinned, process) if record else None
    predicted: Tensor | None = None  # the last call's SUBS log-probabilities (B, L, V), or guided its logits (2B, L, V)
    paired = False  # whether `predicted` holds the unconditional rows too
    log_probs: Tensor | None = None  # what the strategy sees: guided and filtered
    calls = 0
    if isinstance(on_step, StepWatcher):
        on_step.begin(pinned, process)
    if on_step is not None:
        on_step(tokens, -1, context.time)  # the start: a watcher learns the blanks and that a new run began
    for number, plan in enumerate(plans):
        # Every step draws its random numbers and sets its time, skipped or not: caching changes no sample.
        context.uniforms = torch.rand(tokens.shape, dtype=torch.float64, generator=generator, device=tokens.device)
        strategy.begin(plan, context)
        if cache and not strategy.remasks and not process.undecided(tokens, plan.active).any():
            continue  # nothing left to reveal in this step's positions: no network call needed
        guided = guidance is not None and guidance.needs_unconditional(denoiser, context.time)
        if predicted is None or not reuse or (guided and not paired):
            inputs = DenoiserInput(tokens, attention, t=context.time.float(), class_labels=class_labels)
            logits = guidance.predict(denoiser, inputs, mask_id) if guided else denoiser(inputs)
            predicted, paired = (logits if guided else process.log_probs(logits)), guided
            log_probs = None
            calls += 1
        if log_probs is None or (guidance is not None and guidance.varies):  # a scheduled weight mixes anew
            mixed = process.log_probs(guidance.combine(predicted, context.time)) if paired else predicted
            log_probs = apply_filters(mixed, filters, tokens)  # (B, L, V)
        updated = torch.where(pinned, tokens, strategy.step(tokens, log_probs, plan, context))  # (B, L)
        if not torch.equal(updated, tokens):
            predicted = None
            if recorder is not None:
                recorder.add(updated, number, context.time)
            if on_step is not None:
                on_step(updated, number, context.time)
        tokens = updated
    if (tokens == mask_id).any():
        raise RuntimeError(f"{type(strategy).__name__} left [MASK] tokens: its plan must reveal every blank")
    return SamplingResult(tokens=tokens, network_calls=calls, trajectory=recorder.finish() if recorder else None)
