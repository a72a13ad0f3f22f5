"""What every domain's data module provides to the one training loop: a tokenizer and uniform batches."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

Batch = dict[str, Tensor]
"""input_ids (B, L) long; attention_mask (B, L) bool, True at real tokens; maskable (B, L) bool, True where
the forward process may place [MASK] (real, non-special tokens)."""


def make_batch(input_ids: Tensor, tokenizer: PreTrainedTokenizerBase) -> Batch:
    """Attention and maskable masks for (B, L) ids: padding is ignored, special tokens are never masked."""
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), device=input_ids.device)
    attention_mask = input_ids != tokenizer.pad_token_id
    maskable = attention_mask & ~torch.isin(input_ids, special)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "maskable": maskable}


class SequenceDataModule(L.LightningDataModule):
    """Base of the domain data modules (text, proteins).

    Subclasses set `self.tokenizer` in __init__ (the model's vocabulary is linked to it) and yield `Batch`es.
    """

    tokenizer: PreTrainedTokenizerBase

    def tokens_per_character(self) -> float:
        """Scored validation tokens per character of validation text, to turn nats/token into bits/char."""
        return 1.0

    def description(self) -> dict[str, Any]:
        """Plain-data facts the checkpoint keeps (e.g. a length distribution); JSON-serialisable."""
        return {}

    def validation_batches(self, batch_size: int | None = None) -> torch.utils.data.DataLoader:
        """The validation set, deterministically ordered; `eval` uses it outside a Trainer."""
        raise NotImplementedError
