"""Absorbing-state (masked) diffusion: a token becomes [MASK] with probability 1 - alpha(t) and stays masked."""

from __future__ import annotations

import torch
from torch import Tensor

from ..process import forward_mask
from ..schedules import NoiseSchedule
from .base import NoisingProcess


class Absorbing(NoisingProcess):
    """[MASK] is the absorbing state: a position is undecided while it holds [MASK], and once revealed it stays."""

    revises = False

    def corrupt(
        self, x0: Tensor, t: Tensor, schedule: NoiseSchedule, *, maskable: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """Each maskable position masked with probability 1 - alpha(t); the NELBO scores the masked ones."""
        return forward_mask(x0, t, schedule, maskable=maskable, mask_id=self.blank_id, generator=generator)

    def prior(self, tokens: Tensor, blanks: Tensor, generator: torch.Generator) -> Tensor:
        """At t = 1 every blank is [MASK] already: nothing to draw."""
        return tokens

    def undecided(self, tokens: Tensor, editable: Tensor) -> Tensor:
        return (tokens == self.blank_id) & editable
