"""Noising processes: how a token is corrupted on the way to t = 1 and how a sampler walks back.

`Absorbing` (a token becomes [MASK]) is masked diffusion; `Uniform` (a token is resampled uniformly) is
uniform-state diffusion (UDLM). An objective names its process (`Objective.noising`); the sampling loop, generation
and infilling ask the process, not the [MASK] id, which positions are still undecided and how a step moves.
"""

from .absorbing import Absorbing
from .base import NoisingProcess
from .uniform import Uniform

__all__ = ["Absorbing", "NoisingProcess", "Uniform"]
