"""Block diffusion (BD3-LM): masked diffusion inside blocks of `block_size` tokens, autoregressive across them.

log p(x0) = sum_b log p(x0^b | x0^<b), and each term is bounded by the masked-diffusion NELBO of block b with the
clean earlier blocks as context, every block masked at its own time. One forward pass scores every block: the
network reads [x_t ; x_0] (2L tokens) with the block-causal pattern (a noisy token of block b sees the noisy tokens
of block b and the clean tokens of blocks < b; a clean token of block b sees the clean tokens of blocks <= b), both
halves at rotary positions 0..L-1, so the clean half computes exactly the keys and values a sampler caches.

`maskings_per_sequence` = k > 1 scores k maskings of each sequence in one pass over [x_t^1 ; ... ; x_t^k ; x_0]:
the clean half does not depend on the mask draw, so it is computed once, and k maskings cost about (1 + k) / 2k of
k separate passes. Rows of every (B k, ...) tensor here are sequence-major: row b k + i is copy i of sequence b.

block_size = 1 is an autoregressive model (the query at position i is [MASK], its context the clean x_<i), and its
bound is exact; block_size >= L is MDLM.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from ..batch import Batch
from ..denoiser import AttentionPattern, BlockCausal, Denoiser, DenoiserInput
from ..errors import InvalidArgument, UserInputError
from ..process import masked_token_nll, stratified_uniforms
from ..schedules import LogLinearSchedule, NoiseSchedule, training_interval
from .base import Decoding, Loss, Objective

LEVEL_MIN = 1e-5
"""Smallest masking level of the bound's draws: [0, LEVEL_MIN] holds about LEVEL_MIN of the bound."""


class BlockDiffusion(Objective):
    """NELBO summed over blocks; training masks block b at time t_b (antithetic across the batch, per block).

    In training mode (`network.training`) the times come from the schedule's training interval (a
    `ClippedSchedule` narrows it); in evaluation mode, and in `likelihood`, the masking level r of each block is
    drawn over the whole of [0, 1] with weight 1/r: the bound of a sampler that starts every block all-masked,
    whatever schedule it samples with, so block_size = 1 gives exactly the autoregressive NLL. A time-conditioned
    network cannot be trained this way (one t per sequence cannot say each block's time).

    `loss` masks each sequence `maskings_per_sequence` times (its `per_sequence` has B k rows); `likelihood_draw`
    and block size 1 (exact, so one masking says all) use one.
    """

    kind = "a block-diffusion model"
    decoding = Decoding.BLOCKS
    continues_past_window = True
    guidance_applies = True
    sampler_steps_apply = True
    noise_window_applies = True
    needs_causal_attention = True

    def __init__(
        self,
        block_size: int = 8,
        schedule: NoiseSchedule | None = None,
        antithetic: bool = True,
        t_min: float = 1e-3,
        maskings_per_sequence: int = 1,
        attention_kernel: str = "chunks",
    ) -> None:
        """t_min: smallest training time; [0, t_min] holds about t_min of the bound but the largest 1/t weights.
        maskings_per_sequence: k noisy copies of each sequence share one pass over its clean stream.
        attention_kernel: "chunks" (query chunks through SDPA) or "flex" (compiled FlexAttention where it compiles,
        else chunks with one logged line); both exact, chunks the faster on CPU (benchmarks/block_step.py)."""
        if block_size < 1:
            raise InvalidArgument("block_size", f"must be at least 1, got {block_size}")
        if maskings_per_sequence < 1:
            raise InvalidArgument("maskings_per_sequence", f"must be at least 1, got {maskings_per_sequence}")
        if attention_kernel not in ("chunks", "flex"):
            raise InvalidArgument("attention_kernel", f"must be chunks or flex, got {attention_kernel!r}")
        self.attention_kernel = attention_kernel
        self.block_size = block_size
        self.schedule = schedule or LogLinearSchedule()
        self.antithetic = antithetic
        self.t_min = t_min
        self.maskings_per_sequence = maskings_per_sequence

    def num_blocks(self, length: int) -> int:
        return -(-length // self.block_size)

    def per_position(self, per_block: Tensor, length: int) -> Tensor:
        """(B, K) values of each block -> (B, L) the value of each position's block."""
        return per_block.repeat_interleave(self.block_size, dim=1)[:, :length]

    def draw_masks(self, batch: Batch, rates: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(B k, L) bool: each maskable position masked with its block's probability, rates (B k, K)."""
        p_mask = self.per_position(rates, batch.input_ids.shape[1])  # (B k, L)
        maskable = batch.maskable.repeat_interleave(copies_of(batch, rates), dim=0)  # (B k, L)
        return (torch.rand(p_mask.shape, generator=generator, device=p_mask.device) < p_mask) & maskable

    def attention(self, padding: Tensor, length: int, copies: int = 1) -> AttentionPattern:
        """The pattern over [x_t^1 ; ... ; x_t^k ; x_0] for sequences of `length`, k = `copies`; padding
        (B, (k + 1) L) covers every stream."""
        return BlockCausal(self.block_size, padding, copies, flex=self.attention_kernel == "flex")

    def denoiser_input(self, batch: Batch, masked: Tensor, mask_id: int) -> DenoiserInput:
        """The network's input for the `masked` (B k, L) positions: [x_t^1 ; ... ; x_t^k ; x_0] (B, (k + 1) L),
        every stream at rotary positions 0..L-1, scored at the masked positions of the noisy copies."""
        x0 = batch.input_ids
        (size, length), copies = x0.shape, copies_of(batch, masked)
        xt = x0.repeat_interleave(copies, dim=0).masked_fill(masked, mask_id).reshape(size, copies * length)
        noisy = masked.reshape(size, copies * length)  # (B, k L) copy i at [i L, (i + 1) L)
        return DenoiserInput(
            torch.cat((xt, x0), dim=1),  # (B, (k + 1) L)
            self.attention(batch.attention_mask.repeat(1, copies + 1).bool(), length, copies),
            class_labels=batch.class_labels,
            positions=torch.arange(length, device=x0.device).repeat(copies + 1),  # ((k + 1) L,)
            score_at=torch.cat((noisy, torch.zeros_like(x0, dtype=torch.bool)), dim=1),  # (B, (k + 1) L) noisy only
        )

    def block_nll(self, network: Denoiser, batch: Batch, masked: Tensor, mask_id: int) -> Tensor:
        """(B k, K) summed -log p_theta(x0^i | x_t^b, x0^<b) over the `masked` (B k, L) positions of each block:
        k maskings of every sequence, scored in one pass."""
        if getattr(network, "time_conditioned", False):
            raise UserInputError("block diffusion needs a time-independent network: set time_conditioning false")
        x0 = batch.input_ids
        (size, length), copies = x0.shape, copies_of(batch, masked)
        logits = network(self.denoiser_input(batch, masked, mask_id))  # (N, V) in row-major order of the copies
        noisy = masked.reshape(size, copies * length)
        token_nll = masked_token_nll(logits, x0.repeat(1, copies), noisy, mask_id).reshape(size * copies, length)
        padded = self.num_blocks(length) * self.block_size - length
        token_nll = torch.nn.functional.pad(token_nll, (0, padded))  # (B k, K * block_size)
        return token_nll.reshape(size * copies, -1, self.block_size).sum(-1)  # (B k, K)

    def weighted(self, block_nll: Tensor, weights: Tensor) -> Tensor:
        """(B,) sum over blocks of weight * summed NLL; a block with nothing masked adds 0, whatever its weight."""
        return torch.where(block_nll > 0, weights * block_nll, torch.zeros_like(block_nll)).sum(-1)

    def bound_at(
        self,
        network: Denoiser,
        batch: Batch,
        levels: Tensor,
        mask_id: int,
        generator: torch.Generator | None = None,
        masked: Tensor | None = None,
    ) -> Tensor:
        """(B k,) one-draw NELBO estimates with block b of row r masked at level levels[r, b] and weighted 1/level,
        levels (B k, K) for k maskings of each sequence.

        `masked` (B k, L) replaces the draw of the mask (tests enumerate masks to get the exact expectation).
        """
        if masked is None:
            masked = self.draw_masks(batch, levels, generator)
        return self.weighted(self.block_nll(network, batch, masked, mask_id), 1.0 / levels)

    def exact_single_token(self, network: Denoiser, batch: Batch, mask_id: int) -> Tensor:
        """block_size 1: every position masked, weight 1, is the bound's exact value, E_r[1{masked} / r] = 1."""
        return self.block_nll(network, batch, batch.maskable, mask_id).sum(-1)  # (B,)

    def stratified(self, batch: Batch, low: float, high: float, generator: torch.Generator | None) -> Tensor:
        """(B k, K) values in [low, high] for k = `maskings_per_sequence` copies of each sequence: per block,
        stratified across all B k rows when `antithetic`, the k copies of a sequence 1/k of the range apart."""
        copies, blocks = self.maskings_per_sequence, self.num_blocks(batch.input_ids.shape[1])
        rows, device = batch.size * copies, batch.input_ids.device
        if self.antithetic:
            offsets = torch.rand(blocks, generator=generator, device=device)  # (K,)
            u = stratified_uniforms(offsets, rows).T  # (B k, K) stratum s in row s
            u = rearrange(u, "(copy b) blocks -> (b copy) blocks", copy=copies)  # copy i of sequence b: stratum i B + b
        else:
            u = torch.rand(rows, blocks, generator=generator, device=device)
        return low + (high - low) * u

    def loss_at(
        self,
        network: Denoiser,
        batch: Batch,
        t: Tensor,
        mask_id: int,
        generator: torch.Generator | None = None,
        masked: Tensor | None = None,
    ) -> Loss:
        """The training loss with block b of row r at time t[r, b] (B k, K: k maskings of each sequence), weighted
        by the schedule, averaged over all B k rows; `masked` (B k, L) replaces the draw of the mask."""
        if masked is None:
            masked = self.draw_masks(batch, self.schedule.mask_probability(t), generator)
        per_sequence = self.weighted(self.block_nll(network, batch, masked, mask_id), self.schedule.weight(t))
        scored = batch.maskable.sum(-1).repeat_interleave(copies_of(batch, t))  # (B k,)
        return Loss.per_token(per_sequence, scored)

    def loss(
        self,
        network: Denoiser,
        batch: Batch,
        mask_id: int,
        generator: torch.Generator | None = None,
        progress: float = 1.0,
    ) -> Loss:
        """Training mode: the schedule's times in its training interval (its `per_sequence` is then not a bound);
        evaluation mode: a one-draw bound over levels in [t_min, 1]; both over `maskings_per_sequence` maskings of
        each sequence (B k rows). Block size 1: the exact NLL (B rows) in either mode."""
        if self.block_size == 1:
            return Loss.per_token(self.exact_single_token(network, batch, mask_id), batch.maskable.sum(-1))
        if getattr(network, "training", False):
            low, high = training_interval(self.schedule, self.t_min)
            return self.loss_at(network, batch, self.stratified(batch, low, high, generator), mask_id, generator)
        levels = self.stratified(batch, self.t_min, 1.0, generator)  # (B k, K)
        per_sequence = self.bound_at(network, batch, levels, mask_id, generator)
        return Loss.per_token(per_sequence, batch.maskable.sum(-1).repeat_interleave(self.maskings_per_sequence))

    @property
    def exact_likelihood(self) -> bool:
        return self.block_size == 1

    def likelihood_strata(self, batch: Batch) -> tuple[int, ...]:
        """One uniform per block: each block's K levels are stratified across the draws of its sequence."""
        return (self.num_blocks(batch.input_ids.shape[1]),)

    def likelihood_draw(
        self, network: Denoiser, batch: Batch, u: Tensor, mask_id: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """The NELBO over masking levels in [0, 1], block b at level u[:, b] (B, K) (kept above LEVEL_MIN); exact
        for block size 1."""
        if self.exact_likelihood:
            per_sequence = self.exact_single_token(network, batch, mask_id)
        else:
            levels = (LEVEL_MIN + (1.0 - LEVEL_MIN) * u).float().to(batch.input_ids.device)  # (B, K)
            per_sequence = self.bound_at(network, batch, levels, mask_id, generator)
        return per_sequence, batch.maskable.sum(-1)


def copies_of(batch: Batch, rows: Tensor) -> int:
    """k, for a tensor whose B k leading rows are k copies of each of the batch's B sequences."""
    copies, remainder = divmod(rows.shape[0], batch.size)
    if remainder or not copies:
        raise ValueError(f"{rows.shape[0]} rows are not whole copies of a batch of {batch.size} sequences")
    return copies
