"""Exponential moving average of the weights, with a warm-up so short runs are not dominated by init."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel


def ema_model(network: nn.Module, decay: float) -> AveragedModel:
    """An AveragedModel whose effective decay is min(decay, (1 + n) / (10 + n)) after n updates."""

    def average(averaged: Tensor, current: Tensor, num_averaged: Tensor) -> Tensor:
        rate = torch.clamp((1.0 + num_averaged) / (10.0 + num_averaged), max=decay)
        return averaged + (current - averaged) * (1.0 - rate)

    return AveragedModel(network, avg_fn=average, use_buffers=True)
