"""A pretrained model directory's own tokenizer, in the form the text pipeline expects.

The text data module names its special tokens [PAD] [MASK] [BOS] [EOS] [UNK]. A model's tokenizer plays those
roles under its own names (<mask>, [CLS], [SEP], ...); renaming them keeps every id, so the pretrained
embeddings stay where the model expects them and nothing new has to be learned.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from ..errors import UserInputError
from ..model_files import directory_tokenizer
from .vocabulary import SPECIAL_TOKENS, wrap_tokenizer

log = logging.getLogger(__name__)

ROLE_SOURCES = {
    "pad_token": ("pad_token",),
    "mask_token": ("mask_token",),
    "bos_token": ("bos_token", "cls_token"),
    "eos_token": ("eos_token", "sep_token"),
    "unk_token": ("unk_token",),
}
"""Our role -> the model tokenizer's attributes that can fill it, in order of preference."""


def text_tokenizer(path: str | Path, add_mask_token: bool = True) -> PreTrainedTokenizerFast:
    """The model's fast tokenizer with its special tokens renamed to our roles; a missing mask token is added."""
    own = directory_tokenizer(path)
    if own is None:
        raise UserInputError(f"{path}: no tokenizer files (tokenizer.json or vocab.txt)")
    if not own.is_fast:
        raise UserInputError(f"{path}: {type(own).__name__} is not a fast (tokenizers) tokenizer")
    if own.mask_token_id is None:
        if not add_mask_token:
            raise UserInputError(f"{path}: the tokenizer has no mask token and add_mask_token is false")
        log.warning("%s: the tokenizer has no mask token; adding [MASK] (the embeddings will grow by one)", path)
    state = json.loads(own.backend_tokenizer.to_str())
    vocab = own.get_vocab()
    renames: dict[str, str] = {}
    for role, sources in ROLE_SOURCES.items():
        name = next((getattr(own, s) for s in sources if getattr(own, s, None) is not None), None)
        target = SPECIAL_TOKENS[role]
        if name is None or name == target or name in renames:
            continue
        if target in vocab:
            raise UserInputError(f"{path}: {target!r} is an ordinary token there; cannot give it the {role} role")
        renames[name] = target
    for section in ("added_tokens", "model", "post_processor"):
        state[section] = _renamed(state.get(section), renames)
    return wrap_tokenizer(Tokenizer.from_str(json.dumps(state)))


def _renamed(node: Any, renames: dict[str, str]) -> Any:
    """Replace token strings (as values and as keys) throughout a tokenizers JSON section."""
    if isinstance(node, str):
        return renames.get(node, node)
    if isinstance(node, list):
        return [_renamed(item, renames) for item in node]
    if isinstance(node, dict):
        return {renames.get(k, k): _renamed(v, renames) for k, v in node.items()}
    return node
