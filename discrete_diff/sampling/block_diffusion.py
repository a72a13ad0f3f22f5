"""Block-diffusion sampling: blocks left to right, each filled by the one sampling loop, clean blocks cached.

The noisy block of every denoising step attends to the keys and values of the clean blocks before it and to
itself, exactly as the noisy half of the training input [x_t ; x_0] attends to the clean half. A finished block
is not run through the network on its own: it rides along with the first step of the next block, in one call
that caches its keys and values (the clean rows do not see the noisy ones) and gives the noisy block's first
logits, after which the noisy block's keys are dropped again. A block of B tokens thus costs its denoising
steps and no extra call.

Past the training length the context slides, and it must slide the way training saw it: a cached key of a deeper
layer carries what its token attended to when it was computed, so merely dropping the oldest keys would leave
keys that saw text from before the window, which no training window shows. Instead, when the next call would
not fit in the window, the latest half window of clean tokens is encoded again from scratch (with the next
block's first step): every call is then the computation of one training window that starts at a block
boundary, its context between half a window and a window less one block. Rotary positions keep growing;
rotary attention depends only on the distance between query and key, so the absolute positions do not matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor

from ..denoiser import DenoiserInput, Explicit
from ..models.kv_cache import KVCache
from ..schedules import NoiseSchedule
from .filters import LogitFilter
from .guidance import Guidance
from .loop import SamplingResult, StepCallback, run_sampler
from .strategies import Strategy


class CleanContext:
    """The clean tokens a block is denoised against: one training window of them, the latest, sliding.

    `tokens` holds the window's ids from its first block on; the last `pending` of them are not in the cache yet
    (they are encoded by the next block's first call). The calls' rows may repeat the context's rows (guidance runs
    the conditional and the unconditional rows together): the cache then holds the context once per copy, encoded
    with each copy's label, since a label enters every position's keys and values.
    """

    def __init__(self, network: torch.nn.Module, block_size: int, window: int) -> None:
        """window: the training length, the most tokens (context and block) one call may span."""
        if not 1 <= block_size <= window:
            raise ValueError(f"need 1 <= block_size <= window, got {block_size} and {window}")
        self.network, self.block_size, self.window = network, block_size, window
        self.refresh = window // 2 // block_size * block_size
        """Whole blocks of context kept when the window slides."""
        self.cache = KVCache(len(network.blocks))
        self.tokens: Tensor | None = None
        """(B, C) the window's clean ids."""
        self.pending = 0

    def extend(self, clean: Tensor) -> None:
        """Whole clean blocks (B, n) join the context; they are encoded with the next block's first call."""
        if clean.shape[1] % self.block_size:
            raise ValueError(f"{clean.shape[1]} tokens are not whole blocks of {self.block_size}")
        self.tokens = clean if self.tokens is None else torch.cat((self.tokens, clean), dim=1)
        self.pending += clean.shape[1]

    def denoiser(self, width: int) -> CachedBlockDenoiser:
        """What `run_sampler` calls for the next block of `width` positions (the window slides first if needed)."""
        if self.cache.size + self.pending + width > self.window:
            kept = self.tokens[:, self.tokens.shape[1] - self.refresh :]  # (B, refresh): re-encoded from scratch
            start = self.cache.next_position + self.pending - kept.shape[1]  # absolute position of kept[0]
            self.cache = KVCache(len(self.network.blocks))
            self.cache.next_position = start
            self.tokens, self.pending = kept, kept.shape[1]
        return CachedBlockDenoiser(self)

    def filters(self, filters: Sequence[LogitFilter]) -> list[LogitFilter]:
        """The filters, each shown the context before the block's own tokens (for the repetition penalty)."""
        return [WithContext(f, self.tokens) for f in filters] if self.tokens is not None else list(filters)

    def run(self, inputs: DenoiserInput) -> Tensor:
        """Logits (B, W, V) of the noisy block `inputs`; the first call also caches the pending clean blocks."""
        if not self.pending:
            return self.network(inputs, cache=self.cache, update_cache=False)
        clean = self.tokens[:, self.tokens.shape[1] - self.pending :]  # (B, n)
        clean = clean.repeat(inputs.batch_size // clean.shape[0], 1)  # (copies * B, n)
        width = inputs.ids.shape[1]
        block = torch.arange(self.pending + width, device=clean.device) // self.block_size  # (n + W,)
        block[self.pending :] = block[self.pending - 1] + 1  # the noisy block comes after every clean one
        scored = torch.zeros(clean.shape[0], self.pending + width, dtype=torch.bool, device=clean.device)
        scored[:, self.pending :] = True  # (B, n + W)
        fused = DenoiserInput(
            torch.cat((clean, inputs.ids), dim=1),
            Explicit(block[:, None] >= block[None, :]),  # clean rows block-causal, noisy rows see everything
            class_labels=inputs.class_labels,
            score_at=scored,
        )
        logits = self.network(fused, cache=self.cache, update_cache=True)  # (B * W, V)
        self.cache.drop_last(width)  # keep the clean blocks' keys and values, not the draft's
        self.pending = 0
        return rearrange(logits, "(b w) v -> b w v", w=width)


@dataclass
class CachedBlockDenoiser:
    """A time-independent denoiser over the positions after the context (so the loop may reuse its outputs)."""

    context: CleanContext
    time_conditioned = False

    def __call__(self, inputs: DenoiserInput) -> Tensor:
        return self.context.run(inputs)


@dataclass(frozen=True)
class WithContext:
    """A logit filter that sees `context` (B, C) before the tokens it is given."""

    inner: LogitFilter
    context: Tensor

    def __call__(self, logits: Tensor, tokens: Tensor | None = None) -> Tensor:
        return self.inner(logits, None if tokens is None else torch.cat((self.context, tokens), dim=1))


@torch.no_grad()
def generate_blocks(
    network: torch.nn.Module,
    prompt: Tensor,
    length: int,
    *,
    block_size: int,
    window: int,
    mask_id: int,
    strategy: Strategy,
    steps_per_block: int,
    schedule: NoiseSchedule,
    filters: Sequence[LogitFilter] = (),
    class_labels: Tensor | None = None,
    guidance: Guidance | None = None,
    stop_id: int | None = None,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
) -> SamplingResult:
    """Extend `prompt` (B, P) by up to `length` tokens, block by block; returns the new tokens (B, n <= length).

    The prompt's whole blocks go to the cache; a partial last block is completed with its given tokens pinned.
    Generation stops early once every row has drawn `stop_id` (rows are cut there by the caller). `on_step` sees
    the whole sequence so far (B, P + generated) after each step that changed the block. `guidance` (its labels
    only: the prompt stays visible to both passes) steers every block, its schedule running over each block's time.
    """
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}")
    generator = generator or torch.Generator(device=prompt.device).manual_seed(0)
    if guidance is not None and guidance.hidden is not None:
        raise ValueError("block-diffusion guidance steers toward a label only; its prompt is context, never hidden")
    context = CleanContext(network, block_size, window)
    given = prompt.shape[1]
    start = given - given % block_size  # the first block not given in full
    if start:
        context.extend(prompt[:, :start])
    sequence, calls = prompt, 0
    done = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    while sequence.shape[1] < given + length and not done.all():
        width = min(block_size, given + length - start)  # the last block may be partial, as in training
        head = sequence[:, start:]  # (B, r) given tokens of this block (a partial prompt block)
        blanks = torch.full((prompt.shape[0], width - head.shape[1]), mask_id, device=prompt.device)
        block = torch.cat((head, blanks), dim=1)  # (B, width)
        pinned = torch.arange(width, device=prompt.device) < head.shape[1]  # (width,)
        result = run_sampler(
            context.denoiser(width),
            block,
            mask_id=mask_id,
            strategy=strategy,
            num_steps=steps_per_block,
            schedule=schedule,
            filters=context.filters(filters),
            pinned=pinned.expand_as(block),
            class_labels=class_labels,
            guidance=guidance,
            generator=generator,
            on_step=None if on_step is None else _whole_sequence(on_step, sequence[:, :start]),
        )
        calls += result.network_calls
        sequence = torch.cat((sequence[:, :start], result.tokens), dim=1)
        if stop_id is not None:
            done |= (result.tokens[:, head.shape[1] :] == stop_id).any(-1)
        start += width
        if width == block_size:
            context.extend(result.tokens)
    return SamplingResult(tokens=sequence[:, given : given + length], network_calls=calls)


def _whole_sequence(on_step: StepCallback, before: Tensor) -> StepCallback:
    def report(tokens: Tensor, number: int, time: Tensor) -> None:
        on_step(torch.cat((before, tokens), dim=1), number, time)

    return report
