"""Trained models for inference: one loader for training checkpoints and exported model directories.

Nothing here imports Lightning or the transformers integration (`discrete_diff.hf`): loading a model to sample
from it needs neither.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoints import model_from_checkpoint, read_checkpoint
from .directories import model_from_directory
from .trained import TrainedModel


def load_model(path: str | Path) -> TrainedModel:
    """A `.ckpt` written by training, or a directory written by `discrete-diff export`, ready for inference."""
    if Path(path).expanduser().is_dir():
        return model_from_directory(path)
    return model_from_checkpoint(path)


__all__ = ["TrainedModel", "load_model", "model_from_checkpoint", "model_from_directory", "read_checkpoint"]
