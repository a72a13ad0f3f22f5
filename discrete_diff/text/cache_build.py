"""Tokenizing a text corpus into its token cache: the tokenizer, batched exact encoding, split statistics.

Documents are read in order (records of one file in one pass), gathered into batches of about BATCH_CHARACTERS,
encoded (`encoding.corpus_encoder`, in worker processes when there are several CPUs: `parallel.py`) and appended
to the token file with one [EOS] after each document, so memory holds a few batches whatever the corpus size.
Split statistics are exact: characters are counted as read, and scored tokens are the non-special ones, which are
the ones a loss scores.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from ..atomic_files import atomic_directory
from ..errors import UserInputError
from ..labels import LabelVocabulary
from ..token_cache import SplitInfo, TokenFileWriter, cache_is_current, save_document_labels
from .encoding import encoder_name
from .parallel import default_workers, encode_batches
from .sources import Document, read_documents, split_documents
from .tokenizers import TextTokenizer

BATCH_CHARACTERS = 1 << 20


def ensure_text_cache(
    cache: Path,
    documents: list[Document],
    choice: TextTokenizer,
    val_fraction: float,
    root: Path,
    labels: LabelVocabulary | None = None,
    train_characters: int | None = None,
) -> None:
    """Build the token cache in `cache` unless a complete one of the current format is already there."""
    if not cache_is_current(cache):
        build_text_cache(cache, documents, choice, val_fraction, root, labels, train_characters)


def build_text_cache(
    cache: Path,
    documents: list[Document],
    choice: TextTokenizer,
    val_fraction: float,
    root: Path,
    labels: LabelVocabulary | None = None,
    train_characters: int | None = None,
) -> None:
    """Tokenize `documents` into `cache` (written in a staging folder, then renamed into place).

    `train_characters` caps the training split: whole training documents in corpus order while their characters
    stay within it, the first one always (the validation documents are the uncapped corpus's).

    With `labels`, each split writes its documents grouped by label (in their order within a label) and the cache
    keeps each document's token range and label: a block is labelled by the label holding most of its tokens, and
    grouping leaves one mixed block at most where one label's documents end and the next label's begin, however
    short the documents (`token_cache.block_labels`).
    """
    train_docs, val_docs = split_documents(documents, val_fraction)
    if train_characters is not None:
        train_docs = first_documents(train_docs, train_characters)
    if labels is not None:
        train_docs = sorted(train_docs, key=lambda d: labels.id_of(d.label))
        val_docs = sorted(val_docs, key=lambda d: labels.id_of(d.label))

    def train_text():
        return (chunk for _, chunks in read_documents(train_docs) for chunk in chunks)

    if not any(chunk.strip() for chunk in train_text()):
        raise UserInputError(f"{root}: the corpus holds no text")
    tokenizer = choice.build(train_text)
    backend = tokenizer.backend_tokenizer
    backend.encode_special_tokens = True  # a literal "[MASK]" in a corpus is text, not the mask token
    with atomic_directory(cache) as staging:
        writer = _SplitWriter(TokenFileWriter(staging, len(tokenizer)), backend, tokenizer, default_workers(), labels)
        splits: dict[str, SplitInfo] = {}
        for name, docs in (("validation", val_docs), ("train", train_docs)):
            splits[name] = writer.write_split(docs, keep_texts=not val_docs)
        if not val_docs:
            splits = _split_tail(splits["train"], val_fraction, writer.texts, backend, writer.special)
        backend.encode_special_tokens = False
        extra = {"tokenizer": backend.to_str(), "documents": len(documents), "encoder": encoder_name(backend)}
        if labels is not None:
            save_document_labels(staging, writer.ends, writer.label_ids)
            extra["labels"] = list(labels.names)
        writer.file.close(splits, extra)  # meta.json last: it marks the cache complete


@dataclass
class _Text:
    """One encoded text of a single-document corpus, kept to find its validation tail exactly."""

    document: Document
    index: int
    """Position among the document's chunks."""
    characters: int
    tokens: int
    scored: int


@dataclass
class _SplitWriter:
    file: TokenFileWriter
    backend: Tokenizer
    tokenizer: PreTrainedTokenizerFast
    workers: int
    labels: LabelVocabulary | None = None
    texts: list[_Text] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    """With labels: where each document (and its [EOS]) ends in the token file."""
    label_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.special = np.zeros(len(self.tokenizer), dtype=bool)  # token id -> never masked nor scored
        self.special[sorted(set(self.tokenizer.all_special_ids))] = True
        self.eos = np.array([self.tokenizer.eos_token_id], dtype=self.file.dtype)

    def write_split(self, documents: list[Document], keep_texts: bool) -> SplitInfo:
        """Append the documents' tokens, each followed by [EOS]; `keep_texts` records every text's counts."""
        start, characters, scored = self.file.count, 0, 0
        encoded = encode_batches(_batches(documents), self.backend, self.file.dtype, self.workers)
        for items, arrays in encoded:
            pieces: list[np.ndarray] = []
            offset = self.file.count
            for (document, index, length, last), ids in zip(items, arrays, strict=True):
                counted = int(np.count_nonzero(~self.special[ids]))
                characters += length
                scored += counted
                pieces.append(ids)
                offset += len(ids)
                if last:
                    pieces.append(self.eos)
                    offset += 1
                    if self.labels is not None:
                        self.ends.append(offset)
                        self.label_ids.append(self.labels.id_of(document.label))
                if keep_texts:
                    self.texts.append(_Text(document, index, length, len(ids), counted))
            self.file.write(np.concatenate(pieces))
        return SplitInfo(start, self.file.count, characters, scored)


_Item = tuple[Document, int, int, bool]
"""(document, chunk index, characters, is it the document's last chunk)"""


def _batches(documents: list[Document]) -> Iterator[tuple[list[_Item], list[str]]]:
    """The documents' chunks gathered into batches of about BATCH_CHARACTERS."""
    items: list[_Item] = []
    texts: list[str] = []
    size = 0
    for document, chunks in read_documents(documents):
        for index, text, last in _marked(chunks):
            items.append((document, index, len(text), last))
            texts.append(text)
            size += len(text)
            if size >= BATCH_CHARACTERS:
                yield items, texts
                items, texts, size = [], [], 0
    if items:
        yield items, texts


def first_documents(documents: list[Document], characters: int) -> list[Document]:
    """The leading documents whose characters add up to at most `characters` (the first one whatever its size)."""
    kept: list[Document] = []
    total = 0
    for document, chunks in read_documents(documents):
        total += sum(len(chunk) for chunk in chunks)
        if kept and total > characters:
            break
        kept.append(document)
    return kept


def _marked(chunks: Iterable[str]) -> Iterator[tuple[int, str, bool]]:
    """(index, chunk, is it the document's last) for each chunk; an empty document is one empty chunk."""
    iterator = iter(chunks)
    previous, index = next(iterator, ""), 0
    for chunk in iterator:
        yield index, previous, False
        previous, index = chunk, index + 1
    yield index, previous, True


def _split_tail(
    whole: SplitInfo, val_fraction: float, texts: list[_Text], backend: Tokenizer, special: np.ndarray
) -> dict[str, SplitInfo]:
    """A single document: its last `val_fraction` of tokens is the validation split, characters counted exactly.

    The text holding the cut is encoded once more with offsets, which say at which character the cut token starts.
    """
    cut = whole.end - math.ceil(val_fraction * whole.tokens)
    characters, scored, position = 0, 0, whole.start  # validation's counts; token position of the current text
    for text in texts:
        if position + text.tokens > cut:
            if position >= cut:
                characters += text.characters
                scored += text.scored
            else:
                inside = cut - position
                chunk = _chunk(text)
                encoding = backend.encode(chunk, add_special_tokens=False)
                characters += len(chunk) - encoding.offsets[inside][0]
                scored += int(np.count_nonzero(~special[np.asarray(encoding.ids[inside:], dtype=np.int64)]))
        position += text.tokens
    train = SplitInfo(whole.start, cut, whole.characters - characters, whole.scored_tokens - scored)
    return {"train": train, "validation": SplitInfo(cut, whole.end, characters, scored)}


def _chunk(text: _Text) -> str:
    for index, chunk in enumerate(text.document.chunks()):
        if index == text.index:
            return chunk
    raise UserInputError(f"{text.document.path}: changed while it was being tokenized")
