"""Semi-autoregressive generation: blocks left to right, each finished by an inner strategy before the next."""

from __future__ import annotations

from torch import Tensor

from .strategies import SamplerContext, StepPlan, Strategy


class Blocks(Strategy):
    """Split the sequence into blocks of `block_length` positions; the inner strategy fills one block at a time
    (the network still sees the whole sequence, later blocks masked), with num_steps / blocks steps each."""

    def __init__(self, inner: Strategy, block_length: int = 32) -> None:
        if block_length < 1:
            raise ValueError(f"block length must be at least 1, got {block_length}")
        self.inner, self.block_length = inner, block_length
        self.remasks = inner.remasks
        self.follows_num_steps = inner.follows_num_steps

    def plan(self, num_steps: int, editable: Tensor, masked: Tensor) -> list[StepPlan]:
        length = editable.shape[-1]
        starts = range(0, length, self.block_length)
        steps_per_block = max(1, num_steps // len(starts))
        plans: list[StepPlan] = []
        for start in starts:
            in_block = editable.clone()
            in_block[:, :start] = False
            in_block[:, start + self.block_length :] = False
            if not (in_block & masked).any():
                continue  # a block given in full (a prompt) needs no steps
            plans += self.inner.plan(steps_per_block, in_block, masked)
        return plans

    def step(self, tokens: Tensor, log_probs: Tensor, plan: StepPlan, context: SamplerContext) -> Tensor:
        return self.inner.step(tokens, log_probs, plan, context)
