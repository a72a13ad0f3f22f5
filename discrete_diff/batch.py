"""What every objective reads: a batch of token rows with their padding, maskable positions and labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase


@dataclass
class Batch:
    """One batch; Lightning moves every tensor field to the device (a plain dataclass, so not frozen)."""

    input_ids: Tensor
    """(B, L) long token ids."""
    attention_mask: Tensor
    """(B, L) bool, True at real tokens (False at padding)."""
    maskable: Tensor
    """(B, L) bool, True where the forward process may place [MASK]: real, non-special tokens."""
    class_labels: Tensor | None = None
    """(B,) long label ids, for label-conditioned training; None when the data has no labels."""

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]


def make_batch(input_ids: Tensor, tokenizer: PreTrainedTokenizerBase, class_labels: Tensor | None = None) -> Batch:
    """Attention and maskable masks for (B, L) ids: padding is ignored, special tokens are never masked."""
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), device=input_ids.device)
    attention_mask = input_ids != tokenizer.pad_token_id
    maskable = attention_mask & ~torch.isin(input_ids, special)
    return Batch(input_ids, attention_mask, maskable, class_labels)
