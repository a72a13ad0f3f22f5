"""AdamW with linear warm-up and a cosine decay to a floor (transformers' schedule) that also follows wall-clock.

A run cut short by `trainer.max_time` would otherwise stop at its peak learning rate: the schedule below moves
along the cosine by whichever budget is further spent, steps or time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import get_cosine_with_min_lr_schedule_with_warmup


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
    """The cosine decays to lr * min_lr_ratio at the end of the budget."""

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("lr must be positive, warmup_steps >= 0 and min_lr_ratio in [0, 1]")
        self.betas = tuple(self.betas)


def follow_time(step_factor: Callable[[float], float], warmup: int, total: int, time_fraction: Callable[[], float]):
    """A step -> lr-factor function that, after warm-up, is evaluated at the step the spent share of the wall-clock
    budget corresponds to, whenever that is further along than the real step."""

    def factor(step: int) -> float:
        if step < warmup:
            return step_factor(step)
        by_time = warmup + time_fraction() * (total - warmup)
        return step_factor(min(max(step, by_time), total))

    return factor


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
    cosine = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, config.warmup_steps, total_steps, min_lr_rate=config.min_lr_ratio
    )
    factor = follow_time(cosine.lr_lambdas[0], config.warmup_steps, total_steps, time_fraction)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
