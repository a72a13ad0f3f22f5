"""The forward process q(x_t | x0), time sampling, and the continuous-time NELBO (SUBS parameterization).

Plain torch, no Lightning: everything here is a pure function of tensors, tested against exact toy values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .schedules import NoiseSchedule
from .time_densities import TimeDensity


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
    t_min: float,
    antithetic: bool = True,
    density: TimeDensity | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Diffusion times in [t_min, 1], shape (B,), drawn from `density` (default uniform) rescaled to [t_min, 1];
    stratified across the batch when `antithetic` (through the density's inverse CDF).

    t_min keeps the 1/t weight finite; the interval [0, t_min] it leaves out contributes about t_min of the
    bound (the integrand is ~ constant near 0). `importance_weights` gives each draw's 1 / pi.
    """
    if antithetic:
        u = stratified_uniforms(torch.rand((), generator=generator, device=device), batch_size)
    else:
        u = torch.rand(batch_size, generator=generator, device=device)
    return t_min + (1.0 - t_min) * (u if density is None else density.quantile(u))


def importance_weights(t: Tensor, t_min: float, density: TimeDensity | None) -> Tensor:
    """1 / pi for times drawn by `sample_times`: multiplying each draw's NELBO term by it keeps the mean unbiased."""
    if density is None:
        return torch.ones_like(t)
    return 1.0 / density.density((t - t_min) / (1.0 - t_min))


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
    return mask_at_level(x0, schedule.mask_probability(t), maskable=maskable, mask_id=mask_id, generator=generator)


def mask_at_level(
    x0: Tensor, level: Tensor, *, maskable: Tensor, mask_id: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Mask each maskable position of x0 (B, L) independently with probability `level` (B,): (x_t, masked)."""
    u = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=level.dtype)  # (B, L)
    masked = (u < level[:, None]) & maskable
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    return xt, masked


def draw_masked_count(maskable: Tensor, u: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Mask exactly m = floor(u * n) + 1 of each row's n maskable positions, chosen uniformly: (masked, level).

    maskable: (B, L) bool; u: (B,) in [0, 1), so m is uniform on 1..n when u ~ U(0, 1). `level` (B,) float64 is the
    masking level of the forward process these masks stand for: given m masked, level ~ Beta(m, n - m + 1), drawn
    as the m-th smallest of the n uniforms that chose the positions (the level at which exactly they are masked).
    Rows with nothing maskable mask nothing (level 1).
    """
    scores = torch.rand(maskable.shape, generator=generator, dtype=torch.float64, device=maskable.device)  # (B, L)
    scores = scores.masked_fill(~maskable, 2.0)  # never among the m smallest
    count = maskable.sum(-1)  # (B,) n
    chosen = torch.minimum((u.to(scores) * count).floor().long() + 1, count)  # (B,) m in 1..n (0 when n = 0)
    ordered = scores.sort(-1).values  # (B, L)
    level = ordered.gather(1, (chosen - 1).clamp_min(0)[:, None])[:, 0]  # (B,) the m-th smallest
    masked = (scores <= level[:, None]) & maskable & (chosen > 0)[:, None]
    return masked, torch.where(chosen > 0, level, torch.ones_like(level))


def count_weighted_nelbo(token_nll: Tensor, masked: Tensor, maskable: Tensor) -> Tensor:
    """One draw of the NELBO: (n / m) * (sum of the m masked cross-entropies), (B,) float64.

    For a SUBS denoiser the NELBO of any schedule with alpha(0) = 1 is the integral over masking levels lambda in
    [0, 1] of (1/lambda) E[sum of masked cross-entropies] (substitute lambda = 1 - alpha(t)); integrating lambda
    out for a time-independent denoiser leaves sum_m (1/m) E[masked cross-entropies | m of n masked]. So with m
    uniform on 1..n and the m positions uniform (`draw_masked_count`), this is unbiased for it, always finite
    (at most n times one masked token's loss), and a sequence with nothing to score contributes 0.
    """
    summed = token_nll.double().sum(dim=-1)  # (B,)
    count, total = masked.sum(-1), maskable.sum(-1)  # (B,), (B,)
    return torch.where(count > 0, summed * total / count.clamp_min(1), torch.zeros_like(summed))  # (B,)


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
    sequence_cross_entropy: the mean over sequences (with any masked token) of their masked tokens' mean -log p;
    masked_sums: (B,) the unweighted sum of each sequence's masked -log p (training weightings start from it).
    """

    loss: Tensor
    per_sequence: Tensor
    scored_tokens: Tensor
    masked_tokens: Tensor
    masked_cross_entropy: Tensor
    sequence_cross_entropy: Tensor
    masked_sums: Tensor


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
        masked_sums=summed,
    )


def bits(nats: float | Tensor) -> float | Tensor:
    """Nats to bits."""
    return nats / math.log(2.0)


def perplexity(nats_per_token: float | Tensor) -> float | Tensor:
    """exp(nats per token); for a NELBO this is an upper bound on the model's perplexity."""
    if isinstance(nats_per_token, Tensor):
        return torch.exp(nats_per_token)
    return math.exp(nats_per_token)
