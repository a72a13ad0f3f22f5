"""Tokenizers as plain data (JSON text + special-token names), so checkpoints need no pickling."""

from __future__ import annotations

from typing import Any

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast


def tokenizer_to_dict(tokenizer: PreTrainedTokenizerFast) -> dict[str, Any]:
    return {
        "json": tokenizer.backend_tokenizer.to_str(),
        "special_tokens": dict(tokenizer.special_tokens_map),
    }


def tokenizer_from_dict(data: dict[str, Any]) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(data["json"]), **data["special_tokens"])
