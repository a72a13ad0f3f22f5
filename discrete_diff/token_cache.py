"""Token files: a corpus is tokenized once, streamed to disk, and read back block by block (or mapped whole)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

FORMAT_VERSION = 2
"""meta.json's "format". 2: scored_tokens leaves out every special token ([UNK] included, which is never masked
nor scored), and a single document's validation characters are counted, not estimated. A cache of another
format is rebuilt, never read."""


@dataclass
class SplitInfo:
    """Where a split lies in the token file, and how many characters its tokens stand for."""

    start: int
    end: int
    characters: int
    scored_tokens: int
    """Tokens that are not special: exactly the ones a loss masks and scores (`data.make_batch`)."""

    @property
    def tokens(self) -> int:
        return self.end - self.start

    @property
    def tokens_per_character(self) -> float:
        return self.scored_tokens / max(self.characters, 1)


DOCUMENT_LABELS_FILE = "document_labels.npy"
"""A labelled corpus's documents in token-file order: (documents, 2) int64 rows of (end offset, label id); each
document starts where the one before it ends."""


def save_document_labels(directory: Path, ends: list[int], labels: list[int]) -> None:
    np.save(directory / DOCUMENT_LABELS_FILE, np.array([ends, labels], dtype=np.int64).T.reshape(-1, 2))


def load_document_labels(directory: Path) -> np.ndarray | None:
    """The (documents, 2) rows of a labelled corpus; None for an unlabelled one."""
    path = directory / DOCUMENT_LABELS_FILE
    return np.load(path, allow_pickle=False) if path.is_file() else None


def block_labels(documents: np.ndarray, split: SplitInfo, length: int) -> np.ndarray:
    """The label of each block of `length` tokens of a split (as `TokenBlocks` cuts it): the label holding most of
    its tokens (the earlier one on a tie). Labelled corpora keep each label's documents together (cache_build.py),
    so only the few blocks where one label's documents give way to the next ones have more than one label."""
    count = split.tokens // length
    best = np.zeros(count, dtype=np.int64)
    best_overlap = np.zeros(count, dtype=np.int64)
    ends, labels = documents[:, 0], documents[:, 1]
    starts = np.concatenate(([0], ends[:-1]))
    first_of_run = np.flatnonzero(np.diff(labels, prepend=-1) != 0)  # consecutive documents of one label: one run
    last_of_run = np.append(first_of_run[1:] - 1, len(labels) - 1)
    stop = split.start + count * length
    for run_start, run_end, label in zip(starts[first_of_run], ends[last_of_run], labels[first_of_run], strict=True):
        low, high = max(int(run_start), split.start), min(int(run_end), stop)
        if low >= high:
            continue
        blocks = np.arange((low - split.start) // length, (high - 1 - split.start) // length + 1)  # (n,)
        block_start = split.start + blocks * length
        overlap = np.minimum(high, block_start + length) - np.maximum(low, block_start)  # (n,) tokens of this run
        better = overlap > best_overlap[blocks]
        best[blocks[better]], best_overlap[blocks[better]] = label, overlap[better]
    return best


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


class TokenFileWriter:
    """Appends token ids to `<dir>/tokens.bin` and writes meta.json on `close()`; the directory is a staging one
    (files.atomic_directory) that appears under its real name only once complete."""

    def __init__(self, directory: Path, vocab_size: int) -> None:
        self.directory = directory
        self.dtype = token_dtype(vocab_size)
        self.handle = open(directory / "tokens.bin", "wb")
        self.count = 0

    def write(self, ids: Iterable[int] | np.ndarray) -> None:
        array = np.asarray(ids, dtype=self.dtype)
        array.tofile(self.handle)
        self.count += array.size

    def close(self, splits: dict[str, SplitInfo], extra: dict) -> None:
        self.handle.close()
        meta = {
            "format": FORMAT_VERSION,
            "dtype": self.dtype.name,
            "tokens": self.count,
            "splits": {k: asdict(v) for k, v in splits.items()},
        }
        meta.update(extra)
        (self.directory / "meta.json").write_text(json.dumps(meta, indent=2))


def cache_is_current(directory: Path) -> bool:
    """A complete cache (meta.json is written last) of this FORMAT_VERSION."""
    try:
        return json.loads((directory / "meta.json").read_text()).get("format") == FORMAT_VERSION
    except (OSError, ValueError, AttributeError):
        return False


def read_token_cache(directory: Path) -> tuple[np.memmap, dict[str, SplitInfo], dict]:
    meta = json.loads((directory / "meta.json").read_text())
    tokens = np.memmap(directory / "tokens.bin", dtype=np.dtype(meta["dtype"]), mode="r")
    splits = {name: SplitInfo(**info) for name, info in meta["splits"].items()}
    return tokens, splits, meta


class TokenBlocks(Dataset):
    """Non-overlapping blocks of `length` tokens from tokens[start:end] of a token file, read on demand.

    Blocks are read with plain file reads, not through the memory map: every page of a mapped file that a read
    touches (and the kernel maps neighbouring cached pages around each fault) counts toward the process's
    resident memory, so random blocks over a large map look like memory growing with the corpus (measured:
    2.3x from 5 MB to 500 MB); reads through the page cache stay flat.
    """

    def __init__(self, path: Path, dtype: np.dtype, split: SplitInfo, length: int) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.start = split.start
        self.length = length
        self.count = split.tokens // length
        self._handle = None
        self._owner = -1

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._owner != os.getpid():  # a forked DataLoader worker must not share the parent's file offset
            self._handle, self._owner = open(self.path, "rb"), os.getpid()
        self._handle.seek((self.start + index * self.length) * self.dtype.itemsize)
        data = self._handle.read(self.length * self.dtype.itemsize)
        return torch.from_numpy(np.frombuffer(data, dtype=self.dtype).astype(np.int64))  # (L,)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self[i] for i in range(len(self)))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handle": None, "_owner": -1}  # spawned workers open their own handle
