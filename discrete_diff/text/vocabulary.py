"""The special tokens every text tokenizer has, and the one wrapper that adds them."""

from __future__ import annotations

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "mask_token": "[MASK]",
    "bos_token": "[BOS]",
    "eos_token": "[EOS]",
    "unk_token": "[UNK]",
}


def wrap_tokenizer(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a `tokenizers.Tokenizer` as a fast tokenizer, adding any missing special token."""
    tokenizer.add_special_tokens([t for t in SPECIAL_TOKENS.values() if tokenizer.token_to_id(t) is None])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


def tokenizer_from_json(text: str) -> PreTrainedTokenizerFast:
    """Rebuild a tokenizer saved with `tokenizer.backend_tokenizer.to_str()` (e.g. inside a checkpoint)."""
    return wrap_tokenizer(Tokenizer.from_str(text))
