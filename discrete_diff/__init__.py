"""discrete_diff: masked (absorbing-state) discrete diffusion with transformer denoisers."""

from .errors import UserInputError
from .hf import register as _register_with_transformers
from .models.transformer import Transformer, TransformerConfig
from .objectives import MaskedDiffusion, Objective
from .schedules import CosineSchedule, LinearSchedule, LogLinearSchedule, NoiseSchedule, PolynomialSchedule

__version__ = "0.1.0"

_register_with_transformers()  # AutoConfig / AutoModelForMaskedLM load our directories without remote code

__all__ = [
    "CosineSchedule",
    "LinearSchedule",
    "LogLinearSchedule",
    "MaskedDiffusion",
    "NoiseSchedule",
    "Objective",
    "PolynomialSchedule",
    "Transformer",
    "TransformerConfig",
    "UserInputError",
]
