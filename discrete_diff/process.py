"""The forward process q(x_t | x0), time sampling, and the continuous-time NELBO (SUBS parameterization).

Plain torch, no Lightning: everything here is a pure function of tensors, tested against exact toy values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .schedules import NoiseSchedule


def stratified_uniforms(offsets: Tensor, strata: int) -> Tensor:
    """(offsets[..., None] + k / strata) mod 1 for k = 0 .. strata - 1: shape (*offsets.shape, strata).

    The one stratified (antithetic) draw of the library: with offsets ~ U(0, 1) each value is uniform, and
    the strata cover [0, 1) evenly, which lowers the variance of an average without biasing it. Training
    strata run across a batch (one offset), evaluation strata across the time draws of each sequence.
    """
    return (offsets[..., None] + torch.arange(strata, device=offsets.device, dtype=offsets.dtype) / strata) % 1.0


def sample_times(
    batch_size: int,
    *,
    antithetic: bool = True,
    t_min: float = 1e-3,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Diffusion times in [t_min, 1], shape (B,): stratified across the batch when `antithetic`.

    t_min keeps the 1/t weight finite; the interval [0, t_min] it leaves out contributes about t_min of the
    bound (the integrand is ~ constant near 0).
    """
    if antithetic:
        u = stratified_uniforms(torch.rand((), generator=generator, device=device), batch_size)
    else:
        u = torch.rand(batch_size, generator=generator, device=device)
    return t_min + (1.0 - t_min) * u


def forward_mask(
    x0: Tensor,
    t: Tensor,
    schedule: NoiseSchedule,
    *,
    maskable: Tensor,
    mask_id: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw x_t ~ q(x_t | x0): each maskable position becomes [MASK] with probability 1 - alpha(t).

    x0: (B, L) token ids; t: (B,); maskable: (B, L) bool, False at special, padding and pinned positions.
    Returns x_t (B, L) and the boolean mask of masked positions (B, L).
    """
    p_mask = schedule.mask_probability(t)[:, None]  # (B, 1)
    masked = (torch.rand(x0.shape, generator=generator, device=x0.device) < p_mask) & maskable
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    return xt, masked


def subs_log_probs(logits: Tensor, mask_id: int) -> Tensor:
    """SUBS: the denoiser never predicts [MASK]. logits (..., V) -> log p_theta(x0 | x_t) (..., V), float32."""
    logits = logits.float()
    logits[..., mask_id] = -math.inf
    return torch.log_softmax(logits, dim=-1)


def masked_token_nll(logits: Tensor, x0: Tensor, masked: Tensor, mask_id: int) -> Tensor:
    """-log p_theta(x0^i | x_t) at the masked positions, 0 elsewhere: (B, L) float32.

    logits: (N, V) at the masked positions in row-major order (a network called with `score_at=masked`),
    or (B, L, V) at every position.
    """
    if logits.dim() == 3:
        logits = logits[masked]  # (N, V)
    log_probs = subs_log_probs(logits, mask_id)  # (N, V)
    nll = -log_probs.gather(-1, x0[masked].unsqueeze(-1)).squeeze(-1)  # (N,)
    return torch.zeros(x0.shape, dtype=nll.dtype, device=nll.device).masked_scatter(masked, nll)  # (B, L)


@dataclass(frozen=True)
class NelboStats:
    """The NELBO of a batch and what it was averaged over.

    loss: nats per scored token, the quantity to minimise; per_sequence: (B,) NELBO of each sequence in nats;
    scored_tokens: (B,) number of maskable tokens in each sequence; masked_tokens: total masked this draw;
    masked_cross_entropy: mean -log p over all masked tokens of the batch, unweighted;
    sequence_cross_entropy: the mean over sequences (with any masked token) of their masked tokens' mean -log p.
    """

    loss: Tensor
    per_sequence: Tensor
    scored_tokens: Tensor
    masked_tokens: Tensor
    masked_cross_entropy: Tensor
    sequence_cross_entropy: Tensor


def nelbo(token_nll: Tensor, masked: Tensor, t: Tensor, schedule: NoiseSchedule, maskable: Tensor) -> NelboStats:
    """One-draw estimate of NELBO(x0) = E_t[ w(t) * sum_{i masked} -log p_theta(x0^i | x_t) ].

    token_nll: (B, L) from `masked_token_nll`; masked, maskable: (B, L); t: (B,).
    """
    summed = token_nll.sum(dim=-1)  # (B,)
    per_sequence_count = masked.sum(dim=-1)  # (B,)
    has_masks = per_sequence_count > 0
    # Where nothing is masked the term is 0, even if a tiny t made the weight overflow (a NaN loss stays NaN).
    per_sequence = torch.where(has_masks, schedule.weight(t) * summed, torch.zeros_like(summed))  # (B,)
    scored = maskable.sum(dim=-1)  # (B,)
    loss = per_sequence.sum() / scored.sum().clamp_min(1)
    count = masked.sum()
    sequence_means = summed[has_masks] / per_sequence_count[has_masks]  # (B',)
    return NelboStats(
        loss=loss,
        per_sequence=per_sequence,
        scored_tokens=scored,
        masked_tokens=count,
        masked_cross_entropy=summed.sum() / count.clamp_min(1),
        sequence_cross_entropy=sequence_means.mean() if len(sequence_means) else summed.sum() * 0.0,
    )


def bits(nats: float | Tensor) -> float | Tensor:
    """Nats to bits."""
    return nats / math.log(2.0)


def perplexity(nats_per_token: float | Tensor) -> float | Tensor:
    """exp(nats per token); for a NELBO this is an upper bound on the model's perplexity."""
    if isinstance(nats_per_token, Tensor):
        return torch.exp(nats_per_token)
    return math.exp(nats_per_token)
