"""Choosing a clipped noise schedule's window [beta, omega] by the variance of the loss estimate (BD3-LM).

A block-diffusion loss drawn at masking rates near 0 or 1 is mostly noise: a handful of masked tokens under a
weight ~1/t, or blocks with nothing left to condition on. Each candidate window is scored by the variance, over
repeated draws, of the training loss of the same validation batches (all candidates share their random numbers);
the window with the smallest variance is the one to train with. The bound reported stays the one over [0, 1].
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..batch import Batch
from ..denoiser import Denoiser
from ..errors import InvalidArgument
from ..schedules import ClippedSchedule, training_interval
from .block_diffusion import BlockDiffusion


@dataclass(frozen=True)
class WindowScore:
    """One candidate window: the mean and the variance over draws of the training loss (nats per token)."""

    beta: float
    omega: float
    mean: float
    variance: float


def inner_schedule(objective: BlockDiffusion):
    """The schedule a window clips: a clipped schedule's own inner one, else the objective's."""
    schedule = objective.schedule
    return schedule.inner if isinstance(schedule, ClippedSchedule) else schedule


@torch.no_grad()
def score_window(
    objective: BlockDiffusion,
    network: Denoiser,
    batches: Sequence[Batch],
    mask_id: int,
    beta: float,
    omega: float,
    *,
    draws: int = 8,
    seed: int = 0,
) -> WindowScore:
    """Mean and variance over `draws` draws of each batch's training loss with masking rates in [beta, omega],
    both averaged over the batches."""
    if draws < 2:
        raise InvalidArgument("draws", f"must be at least 2 to measure a variance, got {draws}")
    low, high = training_interval(ClippedSchedule(inner_schedule(objective), beta, omega), objective.t_min)
    generator = torch.Generator().manual_seed(seed)
    means, variances = [], []
    for batch in batches:
        values = []
        for _ in range(draws):
            t = objective.stratified(batch, low, high, generator)  # (B, K)
            values.append(float(objective.loss_at(network, batch, t, mask_id, generator).value))
        means.append(statistics.fmean(values))
        variances.append(statistics.variance(values))
    if not means:
        raise InvalidArgument("batches", "is empty")
    return WindowScore(beta, omega, statistics.fmean(means), statistics.fmean(variances))


def choose_noise_window(
    objective: BlockDiffusion,
    network: Denoiser,
    batches: Iterable[Batch],
    mask_id: int,
    windows: Sequence[tuple[float, float]],
    *,
    draws: int = 8,
    seed: int = 0,
    max_batches: int | None = None,
) -> tuple[WindowScore, list[WindowScore]]:
    """The window (beta, omega) of `windows` whose training loss varies least, and every window's score."""
    if not windows:
        raise InvalidArgument("windows", "must name at least one (beta, omega) window")
    for beta, omega in windows:
        if not 0.0 <= beta < omega <= 1.0:
            raise InvalidArgument("windows", f"need 0 <= beta < omega <= 1, got {beta}-{omega}")
    chosen = list(itertools.islice(batches, max_batches))
    scores = [
        score_window(objective, network, chosen, mask_id, beta, omega, draws=draws, seed=seed)
        for beta, omega in windows
    ]
    return min(scores, key=lambda score: score.variance), scores
