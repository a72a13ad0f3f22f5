"""An exponential moving average of the weights through Lightning's weight averaging, with a warm-up.

Lightning's `WeightAveraging` keeps the average, swaps it in for validation, saves it as the checkpoint's
`state_dict` (the raw weights go to `current_model_state`) and updates once per optimizer step, not per
micro-batch. Its plain EMA would start from the random initial weights at full decay; the warm-up below makes
the first updates follow the weights closely, so short runs are not dominated by the initialisation.
"""

from __future__ import annotations

import warnings

import lightning as L
import torch
from lightning.pytorch.callbacks import WeightAveraging
from torch import Tensor


def warmup_ema(decay: float):
    """avg_fn for torch's AveragedModel: effective decay min(decay, (1 + n) / (10 + n)) after n updates."""

    def average(averaged: Tensor, current: Tensor, num_averaged: Tensor) -> Tensor:
        rate = torch.clamp((1.0 + num_averaged) / (10.0 + num_averaged), max=decay)
        return averaged + (current - averaged) * (1.0 - rate)

    return average


class ExponentialMovingAverage(WeightAveraging):
    """EMA of every weight with decay `decay` after a short warm-up (see `warmup_ema`)."""

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        super().__init__(avg_fn=warmup_ema(decay))
        self.decay = decay

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        with warnings.catch_warnings():
            # Lightning warns that configure_model may shard layers; ours only builds the network, unsharded.
            warnings.filterwarnings("ignore", message="You're using the WeightAveraging callback with a model")
            super().setup(trainer, pl_module, stage)

    def restart_from_average(self, pl_module: L.LightningModule) -> None:
        """Put the averaged weights into the module and average afresh from them, warm-up included: a new
        distillation round trains towards a new target, and the last round's average would only lag behind.

        WeightAveraging offers no public way to reach or reset its average: its own private members are used
        (pinned by tests/test_lightning_private.py)."""
        self._copy_average_to_current(pl_module)
        self._average_model.n_averaged.zero_()
