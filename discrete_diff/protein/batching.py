"""Proteins as single padded examples: random or fixed windows, batches of similar length, and an evaluation loader."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerFast

from ..batch import Batch, make_batch
from ..labels import split_labels


class ProteinWindows(Dataset):
    """Each item is one protein as [<cls>, residues..., <eos>], cut to a window of at most `max_length` tokens.

    The window keeps <cls> only if it starts at the protein's start and <eos> only if it reaches its end, so the
    model never sees a false boundary. The key `i` gives the window at the protein's start; `(i, u)` with u in
    [0, 1) the window at that fraction of the possible starts (training draws u with its data order, so a resumed
    run crops as the uninterrupted one would, whichever process or worker reads the item).
    """

    def __init__(self, proteins: Sequence[Sequence[int]], bos_id: int, eos_id: int, max_length: int):
        self.proteins = proteins
        self.bos_id, self.eos_id = bos_id, eos_id
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.proteins)

    def window_length(self, index: int) -> int:
        return min(len(self.proteins[index]) + 2, self.max_length)

    def __getitem__(self, key: int | tuple[int, float]) -> torch.Tensor:
        index, fraction = key if isinstance(key, tuple) else (key, 0.0)
        tokens = [self.bos_id, *self.proteins[index], self.eos_id]
        extra = max(len(tokens) - self.max_length, 0)
        start = min(int(fraction * (extra + 1)), extra)
        return torch.tensor(tokens[start : start + self.max_length], dtype=torch.long)  # (l,)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches in length order: a deterministic pass with little padding (validation, evaluation)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def length_bucket_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator, pool: int = 50
) -> list[list[tuple[int, float]]]:
    """A shuffled pass in batches of similar length, each key with the crop fraction of its window.

    A random permutation is sorted by length within pools of `pool` batches and the batch order shuffled: batches
    stay length-homogeneous without always pairing the same proteins.
    """
    permutation = torch.randperm(len(lengths), generator=generator).tolist()
    crops = torch.rand(len(lengths), generator=generator, dtype=torch.float64).tolist()
    span = batch_size * pool
    batches = []
    for start in range(0, len(permutation), span):
        chunk = sorted(permutation[start : start + span], key=lambda i: lengths[i])
        batches += [chunk[s : s + batch_size] for s in range(0, len(chunk), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [[(i, crops[i]) for i in batches[b]] for b in order]


def protein_loader(
    proteins: list[list[int]], tokenizer: PreTrainedTokenizerFast, max_length: int, batch_size: int
) -> DataLoader:
    """Length-sorted batches of tokenized proteins (residue ids, no specials), windows from the start."""
    windows = ProteinWindows(proteins, tokenizer.bos_token_id, tokenizer.eos_token_id, max_length)
    lengths = [windows.window_length(i) for i in range(len(windows))]
    return DataLoader(
        windows,
        batch_sampler=length_sorted_batches(lengths, batch_size),
        collate_fn=partial(pad_and_batch, tokenizer=tokenizer),
    )


def encode_proteins(tokenizer: PreTrainedTokenizerFast, sequences: list[str]) -> list[list[int]]:
    """Residue ids of each sequence, without <cls>/<eos> (the windows add them)."""
    return [e.ids for e in tokenizer.backend_tokenizer.encode_batch(sequences, add_special_tokens=False)]


def pad_and_batch(items: list, tokenizer: PreTrainedTokenizerFast) -> Batch:
    """Windows (or (window, label id) pairs of a labelled set) padded into one batch."""
    windows, labels = split_labels(items)
    ids = torch.nn.utils.rnn.pad_sequence(windows, batch_first=True, padding_value=tokenizer.pad_token_id)  # (B, L)
    return make_batch(ids, tokenizer, labels)
