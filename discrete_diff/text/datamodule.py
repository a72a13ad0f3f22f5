"""Text corpora as fixed-length blocks of a memory-mapped token file (documents joined with [EOS])."""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerFast

from ..data import SequenceDataModule, make_batch
from ..errors import UserInputError
from ..package_data import staging_directory
from ..specs import to_spec
from ..token_cache import SplitInfo, TokenBlocks, TokenFileWriter, read_token_cache
from .shakespeare import fetch_shakespeare
from .sources import Document, corpus_fingerprint, find_documents
from .tokenizers import CharacterTokenizer, TextTokenizer, tokenizer_from_json

BUILTIN_CORPORA = {"shakespeare": fetch_shakespeare}


def resolve_corpus(corpus: str, data_dir: str) -> Path:
    """A built-in corpus name (fetched on first use) or a path to a file or directory."""
    if corpus in BUILTIN_CORPORA:
        return BUILTIN_CORPORA[corpus](data_dir)
    return Path(corpus).expanduser()


def split_documents(documents: list[Document], val_fraction: float) -> tuple[list[Document], list[Document]]:
    """Whole documents go to validation, chosen by a hash of their names: deterministic and order-free."""
    if len(documents) < 2:
        return documents, []
    ranked = sorted(documents, key=lambda d: hashlib.sha256(d.name.encode()).hexdigest())
    count = min(len(documents) - 1, max(1, round(val_fraction * len(documents))))
    held_out = {d.name for d in ranked[:count]}
    return [d for d in documents if d.name not in held_out], [d for d in documents if d.name in held_out]


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
    ) -> None:
        super().__init__()
        self.init_args = {
            "corpus": corpus,
            "block_length": block_length,
            "batch_size": batch_size,
            "val_fraction": val_fraction,
            "text_field": text_field,
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
        documents = find_documents(root, text_field)
        key = hashlib.sha256(
            f"{corpus_fingerprint(documents)}|{self.tokenizer_choice.describe()}|{val_fraction}".encode()
        ).hexdigest()[:20]
        default_cache = (root if root.is_dir() else root.parent) / ".discrete_diff_cache"
        self.cache = Path(cache_dir).expanduser() / key if cache_dir else default_cache / key
        if not (self.cache / "meta.json").is_file():
            _build_cache(self.cache, documents, self.tokenizer_choice, val_fraction, root)
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


def _build_cache(
    cache: Path, documents: list[Document], choice: TextTokenizer, val_fraction: float, root: Path
) -> None:
    train_docs, val_docs = split_documents(documents, val_fraction)

    def train_text():
        return itertools.chain.from_iterable(d.chunks() for d in train_docs)

    if not any(chunk.strip() for chunk in train_text()):
        raise UserInputError(f"{root}: the corpus holds no text")
    tokenizer = choice.build(train_text)
    backend = tokenizer.backend_tokenizer
    backend.encode_special_tokens = True  # a literal "[MASK]" in a corpus is text, not the mask token
    staging = staging_directory(cache)
    try:
        writer = TokenFileWriter(staging, len(tokenizer))
        splits: dict[str, SplitInfo] = {}
        for name, docs in (("validation", val_docs), ("train", train_docs)):
            start, characters, scored = writer.count, 0, 0
            for document in docs:
                for chunk in document.chunks():
                    ids = backend.encode(chunk, add_special_tokens=False).ids
                    writer.write(ids)
                    characters += len(chunk)
                    scored += len(ids)
                writer.write([tokenizer.eos_token_id])
            splits[name] = SplitInfo(start, writer.count, characters, scored)
        if not val_docs:
            splits = _split_tail(splits["train"], val_fraction)
        backend.encode_special_tokens = False
        writer.close(splits, {"tokenizer": backend.to_str(), "documents": len(documents)})
        if cache.exists():
            shutil.rmtree(cache)
        os.replace(staging, cache)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _split_tail(whole: SplitInfo, val_fraction: float) -> dict[str, SplitInfo]:
    """A single document: its last `val_fraction` of tokens is the validation split."""
    cut = whole.end - math.ceil(val_fraction * whole.tokens)
    share = (cut - whole.start) / max(whole.tokens, 1)
    train = SplitInfo(whole.start, cut, round(whole.characters * share), round(whole.scored_tokens * share))
    val = SplitInfo(cut, whole.end, whole.characters - train.characters, whole.scored_tokens - train.scored_tokens)
    return {"train": train, "validation": val}
