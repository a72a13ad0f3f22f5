"""Semi-autoregressive generation: blocks left to right, each finished by an inner strategy before the next."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..errors import InvalidArgument
from .strategies import Ancestral, SamplerContext, StepPlan, Strategy


@dataclass(frozen=True)
class Blocks(Strategy):
    """Split the sequence into blocks of `block_length` positions; the inner strategy fills one block at a time
    (the network still sees the whole sequence, later blocks masked), with num_steps / blocks steps each."""

    inner: Strategy = Ancestral()
    """The strategy that fills each block (not Blocks itself)."""
    block_length: int = 32
    """Positions per block."""

    def __post_init__(self) -> None:
        if self.block_length < 1:
            raise InvalidArgument("block_length", f"must be at least 1, got {self.block_length}")
        if isinstance(self.inner, Blocks):
            raise InvalidArgument("inner", "cannot be Blocks itself")

    @property
    def remasks(self) -> bool:  # type: ignore[override]
        return self.inner.remasks

    @property
    def follows_num_steps(self) -> bool:
        return self.inner.follows_num_steps

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

    def begin(self, plan: StepPlan, context: SamplerContext) -> None:
        self.inner.begin(plan, context)

    def step(self, tokens: Tensor, log_probs: Tensor, plan: StepPlan, context: SamplerContext) -> Tensor:
        return self.inner.step(tokens, log_probs, plan, context)
