"""Training levers of the masked-diffusion loss that are not maths of the NELBO itself: several maskings of each
sequence, how the weighted sum is normalised, and attention opened gradually from causal to bidirectional."""

from __future__ import annotations

import torch
from torch import Tensor

from ..batch import Batch
from ..denoiser import AttentionPattern, Bidirectional, Explicit


def repeat_batch(batch: Batch, copies: int) -> Batch:
    """`copies` stacked copies of every row: (B, L) -> (copies * B, L), copy-major."""
    if copies == 1:
        return batch
    labels = None if batch.class_labels is None else batch.class_labels.repeat(copies)
    return Batch(
        batch.input_ids.repeat(copies, 1),
        batch.attention_mask.repeat(copies, 1),
        batch.maskable.repeat(copies, 1),
        labels,
    )


def normalize(weighted: Tensor, scored: Tensor, how: str) -> Tensor:
    """weighted: (B,) weighted NELBO terms; scored: (B,) scored tokens per sequence.

    "tokens": sum / total scored tokens (a ratio estimate: nats per token); "sequences": mean over sequences of
    each one's nats per token; "batch": sum / (B x L) with L the longest row (a constant: the plain mean's gradient).
    """
    if how == "tokens":
        return weighted.sum() / scored.sum().clamp_min(1)
    if how == "sequences":
        return (weighted / scored.clamp_min(1)).mean()
    return weighted.sum() / (scored.numel() * scored.max().clamp_min(1))


def annealed_attention(batch: Batch, opened: float) -> AttentionPattern:
    """Causal attention with each future key opened at random with probability `opened` (fresh every call);
    bidirectional from `opened` >= 1. Lets a network trained autoregressively learn to look ahead gradually."""
    if opened >= 1.0:
        return Bidirectional(batch.attention_mask)
    length = batch.input_ids.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=batch.input_ids.device).tril()  # (L, L)
    future = torch.rand(length, length, device=causal.device) < opened  # (L, L)
    return Explicit(causal | future, padding=batch.attention_mask)
