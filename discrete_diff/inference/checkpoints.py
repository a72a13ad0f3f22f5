"""Lightning checkpoints read safely: `torch.load(weights_only=True)`, classes rebuilt only from an allowlist."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from ..checkpoint_format import CHECKPOINT_KEY, WEIGHTS_PREFIX
from ..errors import UserInputError
from .assemble import assemble
from .trained import TrainedModel

LEGACY_WEIGHTS_PREFIX = "ema.module."
"""Format 1 kept the EMA of the weights beside the raw ones, under this prefix."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only=True, turning every failure into a one-line user error."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing them anyway
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserInputError(
            f"{path}: not a checkpoint, or one holding pickled objects (never loaded: only tensors and plain data "
            "are read; save the weights as a state dict of tensors or as safetensors)"
        ) from None
    except Exception:  # arbitrary bytes fail in arbitrary ways inside the unpickler
        raise UserInputError(f"{path}: not a checkpoint (torch.load could not read it)") from None
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint:
        raise UserInputError(f"{path}: not a discrete-diff checkpoint (no '{CHECKPOINT_KEY}' entry)")
    return checkpoint


def model_from_checkpoint(path: str | Path) -> TrainedModel:
    """The averaged (EMA) weights of a training checkpoint, ready for inference."""
    checkpoint = read_checkpoint(path)
    meta = checkpoint[CHECKPOINT_KEY]
    prefix = WEIGHTS_PREFIX if "format_version" in meta else LEGACY_WEIGHTS_PREFIX
    state = checkpoint["state_dict"]
    weights = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    return assemble(meta, weights, str(path), global_step=int(checkpoint.get("global_step", 0)))
