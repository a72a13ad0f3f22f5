"""Text corpora as fixed-length blocks of a memory-mapped token file (documents joined with [EOS])."""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerFast

from ..data import SequenceDataModule, make_batch
from ..errors import UserInputError
from ..specs import to_spec
from ..token_cache import TokenBlocks, read_token_cache
from .cache_build import ensure_text_cache
from .hub import fetch_hub_dataset, is_hub_name
from .shakespeare import fetch_shakespeare
from .sources import corpus_fingerprint, find_documents
from .tokenizers import CharacterTokenizer, TextTokenizer, tokenizer_from_json

BUILTIN_CORPORA = {"shakespeare": fetch_shakespeare}


def resolve_corpus(corpus: str, data_dir: str) -> Path:
    """A built-in corpus name or a hub dataset `hf:NAME[:CONFIG][@SPLIT]` (fetched on first use), or a path."""
    if corpus in BUILTIN_CORPORA:
        return BUILTIN_CORPORA[corpus](data_dir)
    if is_hub_name(corpus):
        return fetch_hub_dataset(corpus, data_dir)
    return Path(corpus).expanduser()


class TextDataModule(SequenceDataModule):
    """Blocks of `block_length` tokens from a text corpus, tokenized once into a cached memory map.

    The cache lives in `cache_dir` (default: `.discrete_diff_cache` beside the corpus) under a key made of
    the corpus content hash, the tokenizer and the split, so editing the corpus or the tokenizer rebuilds it.
    """

    def __init__(
        self,
        corpus: str = "shakespeare",
        tokenizer: TextTokenizer | None = None,
        block_length: int = 256,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        text_field: str = "text",
        cache_dir: str | None = None,
        data_dir: str = "data",
        num_workers: int = 0,
        label_field: str | None = None,
    ) -> None:
        super().__init__()
        self.init_args = {
            "corpus": corpus,
            "block_length": block_length,
            "batch_size": batch_size,
            "val_fraction": val_fraction,
            "text_field": text_field,
            "label_field": label_field,
            "cache_dir": cache_dir,
            "data_dir": data_dir,
        }
        if block_length < 2:
            raise UserInputError(f"data.block_length must be at least 2, got {block_length}")
        if not 0.0 < val_fraction < 1.0:
            raise UserInputError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
        if batch_size < 1:
            raise UserInputError(f"data.batch_size must be positive, got {batch_size}")
        self.corpus = corpus
        self.block_length = block_length
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.tokenizer_choice = tokenizer or CharacterTokenizer()
        root = resolve_corpus(corpus, data_dir)
        documents = find_documents(root, text_field, label_field)
        key = hashlib.sha256(
            f"{corpus_fingerprint(documents)}|{self.tokenizer_choice.describe()}|{val_fraction}".encode()
        ).hexdigest()[:20]
        default_cache = (root if root.is_dir() else root.parent) / ".discrete_diff_cache"
        self.cache = Path(cache_dir).expanduser() / key if cache_dir else default_cache / key
        ensure_text_cache(self.cache, documents, self.tokenizer_choice, val_fraction, root)
        self.tokens, self.splits, meta = read_token_cache(self.cache)
        self.tokenizer: PreTrainedTokenizerFast = tokenizer_from_json(meta["tokenizer"])
        for name, split in self.splits.items():
            if split.tokens < block_length:
                raise UserInputError(
                    f"{root}: the {name} split has {split.tokens} tokens, shorter than one block "
                    f"(data.block_length={block_length}); use a longer corpus or a shorter block"
                )

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def tokens_per_character(self) -> float:
        return self.splits["validation"].tokens_per_character

    def description(self) -> dict[str, Any]:
        spec = {
            "class_path": f"{type(self).__module__}.{type(self).__qualname__}",
            "init_args": {**self.init_args, "tokenizer": to_spec(self.tokenizer_choice)},
        }
        return {"datamodule": spec}

    def _loader(self, split: str, shuffle: bool, batch_size: int) -> DataLoader:
        blocks = TokenBlocks(self.cache / "tokens.bin", self.tokens.dtype, self.splits[split], self.block_length)
        return DataLoader(
            blocks,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=shuffle,
            num_workers=self.num_workers,
            collate_fn=partial(_collate_blocks, tokenizer=self.tokenizer),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", shuffle=False, batch_size=self.batch_size)

    def validation_batches(self, batch_size: int | None = None) -> DataLoader:
        return self._loader("validation", shuffle=False, batch_size=batch_size or self.batch_size)


def _collate_blocks(blocks: list[torch.Tensor], tokenizer: PreTrainedTokenizerFast) -> dict[str, torch.Tensor]:
    return make_batch(torch.stack(blocks), tokenizer)  # (B, L)
