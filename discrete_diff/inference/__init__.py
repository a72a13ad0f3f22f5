"""Trained models for inference: one loader for training checkpoints and exported model directories.

Nothing here imports Lightning or the transformers integration (`discrete_diff.hf`): loading a model to sample
from it needs neither.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoints import model_from_checkpoint, read_checkpoint
from .directories import model_from_directory
from .run_folders import BestCheckpoint, best_checkpoint, checkpoints_folder
from .trained import TrainedModel


def load_model(path: str | Path) -> TrainedModel:
    """A `.ckpt` written by training, a directory written by `discrete-diff export`, or a run's log folder
    (runs/NAME/version_N: its best checkpoint by validation, `best_checkpoint`), ready for inference."""
    if Path(path).expanduser().is_dir():
        if checkpoints_folder(path) is not None:
            return model_from_checkpoint(best_checkpoint(path).path)
        return model_from_directory(path)
    return model_from_checkpoint(path)


__all__ = [
    "BestCheckpoint",
    "TrainedModel",
    "best_checkpoint",
    "load_model",
    "model_from_checkpoint",
    "model_from_directory",
    "read_checkpoint",
]
