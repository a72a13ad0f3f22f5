"""Block diffusion (BD3-LM): masked diffusion inside blocks of `block_size` tokens, autoregressive across them.

log p(x0) = sum_b log p(x0^b | x0^<b), and each term is bounded by the masked-diffusion NELBO of block b with the
clean earlier blocks as context, every block masked at its own time. One forward pass scores every block: the
network reads [x_t ; x_0] (2L tokens) with the block-causal pattern (a noisy token of block b sees the noisy tokens
of block b and the clean tokens of blocks < b; a clean token of block b sees the clean tokens of blocks <= b), both
halves at rotary positions 0..L-1, so the clean half computes exactly the keys and values a sampler caches.

block_size = 1 is an autoregressive model (the query at position i is [MASK], its context the clean x_<i), and its
bound is exact; block_size >= L is MDLM.
"""

from __future__ import annotations

import torch
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
    ) -> None:
        """t_min: smallest training time; [0, t_min] holds about t_min of the bound but the largest 1/t weights."""
        if block_size < 1:
            raise InvalidArgument("block_size", f"must be at least 1, got {block_size}")
        self.block_size = block_size
        self.schedule = schedule or LogLinearSchedule()
        self.antithetic = antithetic
        self.t_min = t_min

    def num_blocks(self, length: int) -> int:
        return -(-length // self.block_size)

    def per_position(self, per_block: Tensor, length: int) -> Tensor:
        """(B, K) values of each block -> (B, L) the value of each position's block."""
        return per_block.repeat_interleave(self.block_size, dim=1)[:, :length]

    def draw_masks(self, batch: Batch, rates: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(B, L) bool: each maskable position masked with its block's probability, rates (B, K)."""
        x0 = batch.input_ids
        p_mask = self.per_position(rates, x0.shape[1])  # (B, L)
        return (torch.rand(x0.shape, generator=generator, device=x0.device) < p_mask) & batch.maskable

    def attention(self, padding: Tensor, length: int) -> AttentionPattern:
        """The pattern over [x_t ; x_0] for sequences of `length`; padding (B, 2L) covers both halves."""
        return BlockCausal(self.block_size, padding)

    def block_nll(self, network: Denoiser, batch: Batch, masked: Tensor, mask_id: int) -> Tensor:
        """(B, K) summed -log p_theta(x0^i | x_t^b, x0^<b) over the `masked` (B, L) positions of each block."""
        if getattr(network, "time_conditioned", False):
            raise UserInputError("block diffusion needs a time-independent network: set time_conditioning false")
        x0 = batch.input_ids
        length = x0.shape[1]
        xt = x0.masked_fill(masked, mask_id)
        padding = torch.cat((batch.attention_mask, batch.attention_mask), dim=1).bool()  # (B, 2L)
        inputs = DenoiserInput(
            torch.cat((xt, x0), dim=1),  # (B, 2L)
            self.attention(padding, length),
            class_labels=batch.class_labels,
            positions=torch.arange(length, device=x0.device).repeat(2),  # (2L,) both halves at 0..L-1
            score_at=torch.cat((masked, torch.zeros_like(masked)), dim=1),  # (B, 2L) noisy half only
        )
        token_nll = masked_token_nll(network(inputs), x0, masked, mask_id)  # (B, L)
        padded = self.num_blocks(length) * self.block_size - length
        token_nll = torch.nn.functional.pad(token_nll, (0, padded))  # (B, K * block_size)
        return token_nll.reshape(x0.shape[0], -1, self.block_size).sum(-1)  # (B, K)

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
        """(B,) one-draw NELBO estimate with block b masked at level levels[:, b] and weighted 1/level.

        `masked` (B, L) replaces the draw of the mask (tests enumerate masks to get the exact expectation).
        """
        if masked is None:
            masked = self.draw_masks(batch, levels, generator)
        return self.weighted(self.block_nll(network, batch, masked, mask_id), 1.0 / levels)

    def exact_single_token(self, network: Denoiser, batch: Batch, mask_id: int) -> Tensor:
        """block_size 1: every position masked, weight 1, is the bound's exact value, E_r[1{masked} / r] = 1."""
        return self.block_nll(network, batch, batch.maskable, mask_id).sum(-1)  # (B,)

    def stratified(self, batch: Batch, low: float, high: float, generator: torch.Generator | None) -> Tensor:
        """(B, K) values in [low, high]: per block, stratified across the batch when `antithetic`."""
        size, device = (batch.size, self.num_blocks(batch.input_ids.shape[1])), batch.input_ids.device
        if self.antithetic:
            offsets = torch.rand(size[1], generator=generator, device=device)  # (K,)
            u = stratified_uniforms(offsets, size[0]).T  # (B, K)
        else:
            u = torch.rand(size, generator=generator, device=device)
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
        """The training loss with block b of each sequence at time t[:, b] (B, K), weighted by the schedule;
        `masked` (B, L) replaces the draw of the mask."""
        if masked is None:
            masked = self.draw_masks(batch, self.schedule.mask_probability(t), generator)
        per_sequence = self.weighted(self.block_nll(network, batch, masked, mask_id), self.schedule.weight(t))
        scored = batch.maskable.sum(-1)  # (B,)
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
        evaluation mode: a one-draw bound over levels in [t_min, 1]; block size 1: the exact NLL in either mode."""
        scored = batch.maskable.sum(-1)  # (B,)
        if self.block_size == 1:
            per_sequence = self.exact_single_token(network, batch, mask_id)
        elif getattr(network, "training", False):
            low, high = training_interval(self.schedule, self.t_min)
            return self.loss_at(network, batch, self.stratified(batch, low, high, generator), mask_id, generator)
        else:
            levels = self.stratified(batch, self.t_min, 1.0, generator)
            per_sequence = self.bound_at(network, batch, levels, mask_id, generator)
        return Loss.per_token(per_sequence, scored)

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
