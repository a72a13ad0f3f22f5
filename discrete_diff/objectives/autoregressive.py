"""The autoregressive baseline's objective: exact next-token cross-entropy over the same blocks and tokens.

The network reads the block shifted right by one, with [MASK] as the start symbol: position i sees
x_<i and predicts x_i. [MASK] never occurs in clean data, and it is the one id every objective is handed,
so the start symbol needs no extra configuration. Every maskable token of the block is scored, the first
one included, so the AR number is -log p(block) over exactly the tokens the diffusion NELBO bounds.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..batch import Batch
from ..denoiser import Causal, Denoiser, DenoiserInput
from .base import Decoding, Loss, Objective


def shift_right(input_ids: Tensor, attention_mask: Tensor, start_id: int) -> tuple[Tensor, Tensor]:
    """(B, L) ids and mask -> the network's inputs: start symbol, then x_0 .. x_{L-2}."""
    start = torch.full_like(input_ids[:, :1], start_id)  # (B, 1)
    ids = torch.cat((start, input_ids[:, :-1]), dim=1)  # (B, L)
    mask = torch.cat((torch.ones_like(attention_mask[:, :1]), attention_mask[:, :-1]), dim=1)  # (B, L)
    return ids, mask


class Autoregressive(Objective):
    """Left-to-right next-token prediction with causal attention; its validation number is an exact NLL."""

    kind = "an autoregressive model"
    decoding = Decoding.LEFT_TO_RIGHT
    needs_causal_attention = True

    def token_nll(self, network: Denoiser, batch: Batch, mask_id: int) -> Tensor:
        """-log p(x_i | x_<i) at every position, 0 where the token is not scored; (B, L) float32."""
        x0, maskable = batch.input_ids, batch.maskable
        ids, attention = shift_right(x0, batch.attention_mask, mask_id)
        inputs = DenoiserInput(ids, Causal(attention), class_labels=batch.class_labels, score_at=maskable)
        log_probs = torch.log_softmax(network(inputs).float(), dim=-1)  # (N, V) at the scored positions
        nll = -log_probs.gather(-1, x0[maskable].unsqueeze(-1)).squeeze(-1)  # (N,)
        return torch.zeros(x0.shape, dtype=nll.dtype, device=nll.device).masked_scatter(maskable, nll)  # (B, L)

    def loss(
        self,
        network: Denoiser,
        batch: Batch,
        mask_id: int,
        generator: torch.Generator | None = None,
        progress: float = 1.0,
    ) -> Loss:
        per_sequence = self.token_nll(network, batch, mask_id).sum(dim=-1)  # (B,)
        scored = batch.maskable.sum(dim=-1)  # (B,)
        return Loss.per_token(per_sequence, scored)

    @property
    def exact_likelihood(self) -> bool:
        return True

    def likelihood_draw(
        self, network: Denoiser, batch: Batch, u: Tensor, mask_id: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """The exact NLL of each sequence; u does not apply (nothing is random)."""
        _, nats, tokens = self.loss(network, batch, mask_id)
        return nats, tokens
