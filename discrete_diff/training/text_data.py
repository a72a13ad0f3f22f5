"""Text corpora as fixed-length windows of a cached token file (documents joined with [EOS])."""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerFast

from ..batch import Batch, make_batch
from ..errors import UserInputError
from ..labels import LABELS_KEY, Labelled, LabelVocabulary, split_labels
from ..specs import to_spec
from ..text.cache_build import cache_is_current, ensure_text_cache
from ..text.domain import TextDomain
from ..text.hub import fetch_hub_dataset, is_hub_name
from ..text.labels import check_labelled, label_by_csv, label_by_folder, label_source, labels_digest, resolve_label_csv
from ..text.shakespeare import fetch_shakespeare
from ..text.sources import Document, corpus_fingerprint, find_documents
from ..text.tokenizers import CharacterTokenizer, TextTokenizer
from ..text.vocabulary import tokenizer_from_json
from ..token_cache import TokenBlocks, block_labels, load_document_labels, read_token_cache
from .data import SequenceDataModule, check_split_and_batch
from .resumable import IndexBatches, resumable_loader

BUILTIN_CORPORA = {"shakespeare": fetch_shakespeare}


def resolve_corpus(corpus: str, data_dir: str) -> Path:
    """A built-in corpus name or a hub dataset `hf:NAME[:CONFIG][@SPLIT]` (fetched on first use), or a path."""
    if corpus in BUILTIN_CORPORA:
        return BUILTIN_CORPORA[corpus](data_dir)
    if is_hub_name(corpus):
        return fetch_hub_dataset(corpus, data_dir)
    return Path(corpus).expanduser()


class TextDataModule(SequenceDataModule):
    """Windows of `max_length` tokens from a text corpus, tokenized once into a cached token file (every window is
    full: the name is the protein data module's and the network's, the most tokens a training example holds).

    The cache lives in `cache_dir` (default: `.discrete_diff_cache` beside the corpus) under a key made of
    the corpus content hash, the tokenizer and the split, so editing the corpus or the tokenizer rebuilds it.
    `prepare_data` downloads a built-in corpus and builds the cache; `setup` reads it.
    """

    def __init__(
        self,
        corpus: str = "shakespeare",
        tokenizer: TextTokenizer | None = None,
        max_length: int = 256,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        text_field: str = "text",
        cache_dir: str | None = None,
        data_dir: str = "data",
        num_workers: int = 0,
        label_field: str | None = None,
        label_folders: bool = False,
        label_csv: str | None = None,
        train_characters: int | None = None,
    ) -> None:
        """Labels (at most one source): `label_field`, a JSONL field or dataset column; `label_folders`, the name of
        the sub-folder of the corpus folder each file sits in; `label_csv`, a CSV of file (its path inside the corpus
        folder) -> label, a relative path looked up in the corpus folder first. A labelled corpus trains a
        label-conditioned model; a block of the token file takes the label holding most of its tokens.
        `train_characters` caps the training text (data-constrained runs): whole training documents in corpus order
        while they stay within it, the first always; the held-out documents stay those of the whole corpus."""
        super().__init__()
        self.init_args = {
            "corpus": corpus,
            "max_length": max_length,
            "batch_size": batch_size,
            "val_fraction": val_fraction,
            "text_field": text_field,
            "label_field": label_field,
            "label_folders": label_folders,
            "label_csv": label_csv,
            "train_characters": train_characters,
            "cache_dir": cache_dir,
            "data_dir": data_dir,
        }
        if max_length < 2:
            raise UserInputError(f"data.max_length must be at least 2, got {max_length}")
        check_split_and_batch(val_fraction, batch_size)
        if train_characters is not None and train_characters < 1:
            raise UserInputError(f"data.train_characters must be positive, got {train_characters}")
        self.train_characters = train_characters
        self.corpus = corpus
        self.max_length = max_length
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.text_field = text_field
        self.label_field = label_field
        self.label_folders = label_folders
        self.label_csv = label_csv
        self.label_source = label_source(label_field, label_folders, label_csv)
        self.cache_dir = cache_dir
        self.data_dir = data_dir
        self.num_workers = num_workers
        self.tokenizer_choice = tokenizer or CharacterTokenizer()
        self._domain: TextDomain | None = None

    def _cache_location(self) -> tuple[Path, list[Document], Path]:
        """The corpus root, its (labelled) documents and the cache folder their content hash and tokenizer name."""
        root = resolve_corpus(self.corpus, self.data_dir)
        documents = self._labelled(root, find_documents(root, self.text_field, self.label_field))
        key = f"{corpus_fingerprint(documents)}|{self.tokenizer_choice.describe()}|{self.val_fraction}"
        if self.label_source is not None:  # an unlabelled corpus keeps the key (and cache) it always had
            key += f"|labels {labels_digest(documents)}"
        if self.train_characters is not None:
            key += f"|train characters {self.train_characters}"
        key = hashlib.sha256(key.encode()).hexdigest()[:20]
        default_cache = (root if root.is_dir() else root.parent) / ".discrete_diff_cache"
        return root, documents, Path(self.cache_dir).expanduser() / key if self.cache_dir else default_cache / key

    def _labelled(self, root: Path, documents: list[Document]) -> list[Document]:
        if self.label_folders:
            documents = label_by_folder(documents, root)
        elif self.label_csv is not None:
            documents = label_by_csv(documents, root, resolve_label_csv(self.label_csv, root))
        if self.label_source is not None:
            check_labelled(documents)
        return documents

    def prepare_data(self) -> None:
        """Download a built-in corpus and tokenize the corpus into the cache, if not done before."""
        root, documents, cache = self._cache_location()
        labels = None if self.label_source is None else LabelVocabulary.from_values(d.label for d in documents)
        ensure_text_cache(
            cache, documents, self.tokenizer_choice, self.val_fraction, root, labels, self.train_characters
        )

    def setup(self, stage: str | None = None) -> None:
        if self._domain is not None:
            return
        root, _, self.cache = self._cache_location()
        if not cache_is_current(self.cache):
            raise UserInputError(f"{root}: not tokenized yet (the data module's prepare_data builds the cache)")
        self.tokens, self.splits, meta = read_token_cache(self.cache)
        self.labels = LabelVocabulary(tuple(meta["labels"])) if "labels" in meta else None
        self.document_labels = load_document_labels(self.cache)
        self._domain = TextDomain(tokenizer_from_json(meta["tokenizer"]))
        for name, split in self.splits.items():
            if split.tokens < self.max_length:
                raise UserInputError(
                    f"{root}: the {name} split has {split.tokens} tokens, shorter than one window "
                    f"(data.max_length={self.max_length}); use a longer corpus or a shorter window"
                )

    @property
    def domain(self) -> TextDomain:
        if self._domain is None:
            raise RuntimeError("the data module is not set up: call prepare_data() and setup() first")
        return self._domain

    def tokens_per_unit(self) -> float:
        return self.splits["validation"].tokens_per_character

    def label_vocabulary(self) -> LabelVocabulary | None:
        return self.labels

    def description(self) -> dict[str, Any]:
        spec = {
            "class_path": f"{type(self).__module__}.{type(self).__qualname__}",
            "init_args": {**self.init_args, "tokenizer": to_spec(self.tokenizer_choice)},
        }
        description = {
            "datamodule": spec,
            "max_length": self.max_length,
            "lengths": {"length": [self.max_length], "count": [1]},
            "tokens_per_unit": self.tokens_per_unit(),
        }
        if self.labels is not None:
            description[LABELS_KEY] = list(self.labels.names)
        return description

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        """Training: a fresh order each epoch, seeded by the run's seed and resumable; validation: in order."""
        blocks = TokenBlocks(self.cache / "tokens.bin", self.tokens.dtype, self.splits[split], self.max_length)
        if self.document_labels is not None:
            blocks = Labelled(blocks, block_labels(self.document_labels, self.splits[split], self.max_length))
        training = split == "train"
        plan = IndexBatches(len(blocks), batch_size, shuffle=training and self.shuffles_training())
        sampler = self.share(plan, split, training=training, seed=self.run_seed() if plan.shuffle else 0)
        return resumable_loader(blocks, sampler, partial(_collate_blocks, tokenizer=self.tokenizer), self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", batch_size=self.batch_size)

    def validation_batches(self, batch_size: int | None = None) -> DataLoader:
        return self._loader("validation", batch_size=batch_size or self.batch_size)


def _collate_blocks(items: list, tokenizer: PreTrainedTokenizerFast) -> Batch:
    blocks, labels = split_labels(items)
    return make_batch(torch.stack(blocks), tokenizer, labels)  # (B, L)
