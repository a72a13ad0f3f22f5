"""Training callbacks: token throughput."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class TokenThroughput(L.Callback):
    """Logs training tokens per second (all tokens of the batch, padding excluded) averaged over a window."""

    def __init__(self, window: int = 20) -> None:
        self.window = window
        self._tokens = 0
        self._start: float | None = None
        self._steps = 0

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self._start is None:
            self._start = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Validation time is not training time: restart the window."""
        self._tokens, self._steps, self._start = 0, 0, None

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._tokens += int(batch["attention_mask"].sum()) * trainer.world_size
        self._steps += 1
        if self._steps >= self.window and self._start is not None:
            rate = self._tokens / (time.perf_counter() - self._start)
            module.log("train/tokens_per_sec", rate, prog_bar=True, rank_zero_only=True)
            self._tokens, self._steps, self._start = 0, 0, None
