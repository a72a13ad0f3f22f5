"""AdamW with linear warm-up and cosine decay: the one optimizer recipe, typed and validated."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class OptimizerConfig:
    lr: float = 3e-3
    """Peak learning rate, reached after warm-up."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay on matrices (not on norms, biases or embeddings)."""
    betas: tuple[float, float] = (0.9, 0.98)
    """Adam moment decay rates."""
    warmup_steps: int = 100
    """Linear warm-up from 0 to lr."""
    min_lr_ratio: float = 0.1
    """The cosine decays to lr * min_lr_ratio at the last step."""

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("lr must be positive, warmup_steps >= 0 and min_lr_ratio in [0, 1]")
        self.betas = tuple(self.betas)


def warmup_cosine(step: int, warmup: int, total: int, floor: float, time_fraction: float = 0.0) -> float:
    """Multiplier of the peak learning rate at `step`.

    The cosine follows whichever budget is further spent: steps, or `time_fraction` of a wall-clock limit,
    so a run cut short by `trainer.max_time` still ends annealed rather than at its peak rate.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_fraction))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    network: nn.Module,
    config: OptimizerConfig,
    total_steps: int,
    time_fraction: Callable[[], float] = lambda: 0.0,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW and its schedule; `time_fraction()` is the share of the wall-clock budget used so far."""
    decay = [p for n, p in network.named_parameters() if p.requires_grad and p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in network.named_parameters() if p.requires_grad and (p.ndim < 2 or "embed" in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=config.betas,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine(step, config.warmup_steps, total_steps, config.min_lr_ratio, time_fraction()),
    )
    return optimizer, schedule
