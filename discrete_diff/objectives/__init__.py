"""Training objectives: what a network is asked to predict from a batch, and the likelihood each reports."""

from .autoregressive import Autoregressive, shift_right
from .base import Loss, Objective
from .block_diffusion import BlockDiffusion
from .bound import LikelihoodBound, average_time_draws
from .masked_diffusion import MaskedDiffusion

__all__ = [
    "Autoregressive",
    "BlockDiffusion",
    "LikelihoodBound",
    "Loss",
    "MaskedDiffusion",
    "Objective",
    "average_time_draws",
    "shift_right",
]
