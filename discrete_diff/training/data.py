"""What every domain's data module provides to the one training loop: a domain (tokenizer inside) and batches.

Downloads and tokenizing happen in `prepare_data` (once per machine), reading in `setup` (every process); the
constructor only checks its arguments, so `--help`, `--print_config` and config errors never touch the data.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from transformers import PreTrainedTokenizerFast

from ..domain import Domain


class SequenceDataModule(L.LightningDataModule):
    """Base of the domain data modules (text, proteins)."""

    @property
    def domain(self) -> Domain:
        """The kind of sequence, with the tokenizer the model's vocabulary follows (available after `setup`)."""
        raise NotImplementedError

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        return self.domain.tokenizer

    def tokens_per_unit(self) -> float:
        """Scored validation tokens per unit of the domain (character, residue), to turn nats/token into bits."""
        return 1.0

    def description(self) -> dict[str, Any]:
        """Plain-data facts the checkpoint keeps: the module's spec, the training window and lengths."""
        return {}

    def validation_batches(self, batch_size: int | None = None) -> torch.utils.data.DataLoader:
        """The validation set, deterministically ordered; `eval` uses it outside a Trainer."""
        raise NotImplementedError
