"""What an objective is: a loss over a batch, and the validation number `eval` reports for its kind of model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import NamedTuple

import torch
from torch import Tensor

from ..batch import Batch
from ..denoiser import Denoiser
from .bound import LikelihoodBound


class Loss(NamedTuple):
    """A batch's loss and what the likelihood bound needs from it."""

    value: Tensor
    """Scalar: the quantity training minimises (nats per scored token for the NELBO and the AR NLL)."""
    per_sequence: Tensor
    """(B,) nats of each sequence (a one-draw NELBO estimate, or the exact NLL)."""
    scored_tokens: Tensor
    """(B,) tokens each sequence is scored on."""

    @classmethod
    def per_token(cls, per_sequence: Tensor, scored_tokens: Tensor) -> Loss:
        """The loss whose value is nats per scored token over the batch."""
        return cls(per_sequence.sum() / scored_tokens.sum().clamp_min(1), per_sequence, scored_tokens)


class Objective(ABC):
    """A loss over a batch; the Lightning module and `eval` hold one of these, and nothing else knows its maths."""

    @abstractmethod
    def loss(
        self,
        network: Denoiser,
        batch: Batch,
        mask_id: int,
        generator: torch.Generator | None = None,
        progress: float = 1.0,
    ) -> Loss:
        """The training loss of one batch; `progress` in [0, 1] is the share of the training budget spent (for
        levers that change over training)."""

    def validation_loss(
        self, network: Denoiser, batch: Batch, mask_id: int, generator: torch.Generator | None = None
    ) -> Loss:
        """What validation logs per sequence: the same number `likelihood` averages (the training loss by default)."""
        return self.loss(network, batch, mask_id, generator)

    @abstractmethod
    def likelihood(
        self,
        network: Denoiser,
        batches: Iterable[Batch],
        mask_id: int,
        *,
        time_draws: int = 8,
        seed: int = 0,
        max_batches: int | None = None,
    ) -> LikelihoodBound:
        """The validation number for this kind of model (a NELBO bound, or an exact NLL), in nats per token."""
