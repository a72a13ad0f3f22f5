"""`last.ckpt` on a clock, independent of validation: a run killed at any moment loses at most one interval."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from ..errors import UserInputError


class LastCheckpoint(ModelCheckpoint):
    """Rewrites `last.ckpt` every `every_n_train_steps` steps or `train_time_interval` of training, and when
    training ends (Lightning's own `save_last` follows validation, and only when that saved a best checkpoint).

    A save due at a step that validates waits for the validation, so the checkpoint and the log written with it
    hold that step's validation number: a resumed run does not validate its first step again. Configs list this
    callback first, so `trainer.checkpoint_callback.last_model_path` is its file.
    """

    def __init__(
        self,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        dirpath: str | None = None,
    ) -> None:
        if (every_n_train_steps is None) == (train_time_interval is None):
            raise UserInputError("LastCheckpoint: give one of every_n_train_steps and train_time_interval")
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise UserInputError(f"LastCheckpoint: every_n_train_steps must be positive, got {every_n_train_steps}")
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0, enable_version_counter=False)
        self.every_steps = every_n_train_steps
        self.every_seconds = None if train_time_interval is None else train_time_interval.total_seconds()
        self._saved_at = time.monotonic()
        self._after_validation = False

    @property
    def state_key(self) -> str:
        # Lightning's docs on callback state name this helper for subclasses; tests/test_lightning_private.py pins it.
        return self._generate_state_key(every_steps=self.every_steps, every_seconds=self.every_seconds)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._saved_at = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if not self._due(trainer):
            return
        # No public API says whether the step that is ending validates; the epoch loop's own test is private
        # (pinned by tests/test_lightning_private.py). Rebuilding it from Trainer settings would drift from Lightning.
        loop = trainer.fit_loop.epoch_loop
        if loop._should_check_val_fx(trainer.fit_loop._data_fetcher):
            self._after_validation = True
        else:
            self._save(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._after_validation and not trainer.sanity_checking:
            self._after_validation = False
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Nothing: epochs do not trigger this checkpoint."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def _due(self, trainer: L.Trainer) -> bool:
        if self.every_steps is not None:
            return trainer.global_step % self.every_steps == 0
        return trainer.strategy.broadcast(time.monotonic() - self._saved_at >= self.every_seconds)  # rank 0 decides

    def _save(self, trainer: L.Trainer) -> None:
        # ModelCheckpoint's own protected steps (skip while sanity checking or after a save at this step; write and
        # link last.ckpt): this subclass reuses them, as Lightning's periodic saves do, rather than copying them.
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self._saved_at = time.monotonic()
