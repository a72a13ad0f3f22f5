"""Semi-autoregressive generation: spans left to right, each finished by an inner strategy before the next.

"Span", not "block": blocks are block diffusion's (`BlockDiffusion.block_size`), a training setting; spans are only
how this sampler orders its reveals, for any model.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..errors import InvalidArgument
from .strategies import Ancestral, SamplerContext, StepPlan, Strategy


@dataclass(frozen=True)
class Spans(Strategy):
    """Split the sequence into spans of `span_length` positions; the inner strategy fills one span at a time
    (the network still sees the whole sequence, later spans masked), with num_steps / spans steps each."""

    inner: Strategy = Ancestral()
    """The strategy that fills each span (not Spans itself)."""
    span_length: int = 32
    """Positions per span."""

    def __post_init__(self) -> None:
        if self.span_length < 1:
            raise InvalidArgument("span_length", f"must be at least 1, got {self.span_length}")
        if isinstance(self.inner, Spans):
            raise InvalidArgument("inner", "cannot be Spans itself")

    @property
    def remasks(self) -> bool:  # type: ignore[override]
        return self.inner.remasks

    @property
    def follows_num_steps(self) -> bool:
        return self.inner.follows_num_steps

    def plan(self, num_steps: int, editable: Tensor, masked: Tensor) -> list[StepPlan]:
        length = editable.shape[-1]
        starts = range(0, length, self.span_length)
        steps_per_span = max(1, num_steps // len(starts))
        plans: list[StepPlan] = []
        for start in starts:
            in_span = editable.clone()
            in_span[:, :start] = False
            in_span[:, start + self.span_length :] = False
            if not (in_span & masked).any():
                continue  # a span given in full (a prompt) needs no steps
            plans += self.inner.plan(steps_per_span, in_span, masked)
        return plans

    def begin(self, plan: StepPlan, context: SamplerContext) -> None:
        self.inner.begin(plan, context)

    def step(self, tokens: Tensor, log_probs: Tensor, plan: StepPlan, context: SamplerContext) -> Tensor:
        return self.inner.step(tokens, log_probs, plan, context)
