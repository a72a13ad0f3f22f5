"""What a noising process is: the forward corruption q(x_t | x0), the law at t = 1, the reverse step, and which
positions a sampler may still change."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

from ..process import subs_log_probs
from ..schedules import NoiseSchedule


class NoisingProcess(ABC):
    """One way of noising tokens, over a vocabulary whose [MASK] id is `blank_id`.

    Layouts (generation, infilling) write `blank_id` at the positions to generate; `prior` turns those into a draw
    of the process at t = 1. The denoiser's output is p_theta(x0 | x_t) over the vocabulary with [MASK] never
    predicted (`log_probs`); the process turns it into a reverse step (`ancestral_step`).
    """

    revises: ClassVar[bool]
    """A reverse step may change a position that already holds a token (the live view shows changes, not reveals)."""

    def __init__(self, blank_id: int) -> None:
        self.blank_id = blank_id

    @abstractmethod
    def corrupt(
        self, x0: Tensor, t: Tensor, schedule: NoiseSchedule, *, maskable: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """x_t ~ q(x_t | x0) at times t (B,): x0, maskable (B, L). Returns x_t (B, L) and the positions (B, L) the
        NELBO scores at this draw."""

    @abstractmethod
    def prior(self, tokens: Tensor, blanks: Tensor, generator: torch.Generator) -> Tensor:
        """tokens (B, L) with the `blanks` (B, L) positions drawn from the process at t = 1."""

    @abstractmethod
    def undecided(self, tokens: Tensor, editable: Tensor) -> Tensor:
        """(B, L) bool: the `editable` positions a reverse step may still change."""

    def log_probs(self, logits: Tensor) -> Tensor:
        """Network logits (..., V) -> log p_theta(x0 | x_t) (..., V) float32, [MASK] never predicted."""
        return subs_log_probs(logits, self.blank_id)

    def reverse_step(
        self, tokens: Tensor, log_probs: Tensor, active: Tensor, times: tuple[float, float], schedule: NoiseSchedule
    ) -> tuple[Tensor, Tensor]:
        """For a process that `revises`: the ancestral step from t to s < t (`times`; s = 0 ends the run) at the
        `active` (B, L) positions, the denoiser's prediction being log_probs (B, L, V). Returns the positions (B, L)
        to draw anew and the log-probabilities (B, L, V) to draw them from (the strategy draws). An absorbing step
        is the strategies' own choice of which masked positions to reveal, so the absorbing process has none."""
        raise TypeError(f"{type(self).__name__} does not revise tokens: its strategies reveal [MASK] positions")
