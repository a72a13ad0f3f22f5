"""The autoregressive baseline's objective: exact next-token cross-entropy over the same blocks and tokens.

The network reads the block shifted right by one, with [MASK] as the start symbol: position i sees
x_<i and predicts x_i. [MASK] never occurs in clean data, and it is the one id every objective is handed,
so the start symbol needs no extra configuration. Every maskable token of the block is scored, the first
one included, so the AR number is -log p(block) over exactly the tokens the diffusion NELBO bounds.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from ..batch import Batch
from ..denoiser import Causal, Denoiser, DenoiserInput
from .base import Loss, Objective
from .bound import LikelihoodBound


def shift_right(input_ids: Tensor, attention_mask: Tensor, start_id: int) -> tuple[Tensor, Tensor]:
    """(B, L) ids and mask -> the network's inputs: start symbol, then x_0 .. x_{L-2}."""
    start = torch.full_like(input_ids[:, :1], start_id)  # (B, 1)
    ids = torch.cat((start, input_ids[:, :-1]), dim=1)  # (B, L)
    mask = torch.cat((torch.ones_like(attention_mask[:, :1]), attention_mask[:, :-1]), dim=1)  # (B, L)
    return ids, mask


class Autoregressive(Objective):
    """Left-to-right next-token prediction with causal attention; its validation number is an exact NLL."""

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

    @torch.no_grad()
    def likelihood(
        self,
        network: Denoiser,
        batches: Iterable[Batch],
        mask_id: int,
        *,
        time_draws: int = 1,
        seed: int = 0,
        max_batches: int | None = None,
    ) -> LikelihoodBound:
        """The exact NLL of the validation blocks; time_draws and seed do not apply (nothing is random)."""
        total_nats, total_tokens, sequences = 0.0, 0, 0
        for index, batch in enumerate(batches):
            if max_batches is not None and index >= max_batches:
                break
            _, nats, tokens = self.loss(network, batch, mask_id)
            total_nats += nats.double().sum().item()
            total_tokens += int(tokens.sum())
            sequences += nats.shape[0]
        if total_tokens == 0:
            raise ValueError("no tokens to evaluate")
        return LikelihoodBound(
            nats_per_token=total_nats / total_tokens,
            standard_error=0.0,
            sequences=sequences,
            tokens=total_tokens,
            time_draws=0,
            exact=True,
            error_from="",
        )
