"""discrete_diff: masked (absorbing-state) discrete diffusion with transformer denoisers.

Importing the package registers its model type with transformers' Auto classes; it does not import Lightning
(training lives in `discrete_diff.training`).
"""

from .denoiser import DenoiserInput
from .errors import UserInputError
from .hf import register as _register_with_transformers
from .inference import TrainedModel, load_model
from .models.transformer import Transformer, TransformerConfig
from .objectives import Autoregressive, BlockDiffusion, MaskedDiffusion, Objective
from .pipeline import DiffusionPipeline
from .schedules import (
    ClippedSchedule,
    CosineSchedule,
    LinearSchedule,
    LogLinearSchedule,
    NoiseSchedule,
    PolynomialSchedule,
)

__version__ = "0.3.0"
"""The one place the version is stated (pyproject.toml reads it)."""

_register_with_transformers()  # AutoConfig / AutoModelForMaskedLM load our directories without remote code

__all__ = [
    "Autoregressive",
    "BlockDiffusion",
    "ClippedSchedule",
    "CosineSchedule",
    "DenoiserInput",
    "DiffusionPipeline",
    "LinearSchedule",
    "LogLinearSchedule",
    "MaskedDiffusion",
    "NoiseSchedule",
    "Objective",
    "PolynomialSchedule",
    "TrainedModel",
    "Transformer",
    "TransformerConfig",
    "UserInputError",
    "load_model",
]
