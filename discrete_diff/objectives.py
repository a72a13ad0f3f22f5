"""Training objectives: what a network is asked to predict from a batch, and the loss in nats per token.

The Lightning module holds one of these; a masked-diffusion model and the autoregressive baseline share
everything else (network, data, optimizer, loop).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from .data import Batch
from .evaluation.likelihood import LikelihoodBound, nelbo_bound
from .process import NelboStats, forward_mask, nelbo, sample_times, subs_log_probs
from .schedules import LogLinearSchedule, NoiseSchedule


class Objective(ABC):
    """A loss over a batch; `causal` says which attention the network must use."""

    causal: bool = False

    @abstractmethod
    def loss(
        self, network: nn.Module, batch: Batch, mask_id: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (loss in nats per scored token, per-sequence nats (B,), per-sequence scored tokens (B,))."""

    @abstractmethod
    def likelihood(
        self,
        network: nn.Module,
        batches: Iterable[Batch],
        mask_id: int,
        *,
        time_draws: int = 8,
        tokens_per_character: float = 1.0,
        seed: int = 0,
        max_batches: int | None = None,
    ) -> LikelihoodBound:
        """The validation number `eval` reports for this kind of model (a NELBO bound, or an exact NLL)."""


class MaskedDiffusion(Objective):
    """The continuous-time NELBO of absorbing-state diffusion with the SUBS parameterization.

    Training may reweight the masking levels: any positive weighting over t has the same optimal denoiser
    (the true conditionals), so the training loss need not be the NELBO itself. `train_weighting`:
    - "elbo": the NELBO, w(t) * sum of masked cross-entropies; a sequence drawn at small t has a handful of
      masked tokens times a weight ~1/t, so its gradient is noisy and, under clipping, can swamp the batch;
    - "sequence": each sequence contributes the mean cross-entropy of its masked tokens: the NELBO's equal
      weight per masking level with the random count of masked tokens replaced by its expectation;
    - "flat": every masked token in the batch counts the same (MaskGIT / BERT style), favouring high t.
    Validation and `eval` always report the NELBO.
    """

    causal = False
    WEIGHTINGS = ("elbo", "sequence", "flat")

    def __init__(
        self,
        schedule: NoiseSchedule | None = None,
        antithetic: bool = True,
        t_min: float = 1e-3,
        train_weighting: str = "elbo",
    ) -> None:
        """t_min: smallest training time; [0, t_min] holds about t_min of the bound but the largest 1/t weights."""
        if train_weighting not in self.WEIGHTINGS:
            raise ValueError(f"train_weighting must be one of {self.WEIGHTINGS}, got {train_weighting!r}")
        self.schedule = schedule or LogLinearSchedule()
        self.antithetic = antithetic
        self.t_min = t_min
        self.train_weighting = train_weighting

    def stats_at(
        self,
        network: nn.Module,
        batch: Batch,
        t: Tensor,
        mask_id: int,
        generator: torch.Generator | None = None,
    ) -> NelboStats:
        """Mask at times t (B,), denoise, and score the masked positions."""
        x0, maskable = batch["input_ids"], batch["maskable"]
        xt, masked = forward_mask(x0, t, self.schedule, maskable=maskable, mask_id=mask_id, generator=generator)
        logits = network(xt, batch["attention_mask"], t)  # (B, L, V)
        return nelbo(subs_log_probs(logits, mask_id), x0, masked, t, self.schedule, maskable)

    def loss_at(
        self,
        network: nn.Module,
        batch: Batch,
        t: Tensor,
        mask_id: int,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The NELBO estimate at given times t (B,); evaluation uses it with stratified draws."""
        stats = self.stats_at(network, batch, t, mask_id, generator)
        return stats.loss, stats.per_sequence, stats.scored_tokens

    def likelihood(
        self,
        network: nn.Module,
        batches: Iterable[Batch],
        mask_id: int,
        *,
        time_draws: int = 8,
        tokens_per_character: float = 1.0,
        seed: int = 0,
        max_batches: int | None = None,
    ) -> LikelihoodBound:
        return nelbo_bound(
            network,
            self,
            batches,
            mask_id,
            time_draws=time_draws,
            tokens_per_character=tokens_per_character,
            seed=seed,
            max_batches=max_batches,
        )

    def loss(
        self, network: nn.Module, batch: Batch, mask_id: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        x0 = batch["input_ids"]
        t = sample_times(
            x0.shape[0], antithetic=self.antithetic, t_min=self.t_min, generator=generator, device=x0.device
        )
        stats = self.stats_at(network, batch, t, mask_id, generator)
        loss = {"elbo": stats.loss, "sequence": stats.sequence_cross_entropy, "flat": stats.masked_cross_entropy}[
            self.train_weighting
        ]
        return loss, stats.per_sequence, stats.scored_tokens
