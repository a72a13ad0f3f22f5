"""Training objectives: what a network is asked to predict from a batch, and the likelihood each reports."""

from .autoregressive import Autoregressive, shift_right
from .base import Decoding, Loss, Objective
from .block_diffusion import BlockDiffusion
from .bound import LikelihoodBound
from .estimate import estimate_likelihood
from .masked_diffusion import MaskedDiffusion
from .uniform_diffusion import UniformDiffusion

__all__ = [
    "Autoregressive",
    "BlockDiffusion",
    "Decoding",
    "LikelihoodBound",
    "Loss",
    "MaskedDiffusion",
    "Objective",
    "UniformDiffusion",
    "estimate_likelihood",
    "shift_right",
]
