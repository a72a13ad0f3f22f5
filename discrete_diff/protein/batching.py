"""Proteins as single padded examples: random or fixed windows, batches of similar length, and their loader."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers import PreTrainedTokenizerFast

from ..batch import Batch, make_batch


class ProteinWindows(Dataset):
    """Each item is one protein as [<cls>, residues..., <eos>], cut to a window of at most `max_length` tokens.

    The window keeps <cls> only if it starts at the protein's start and <eos> only if it reaches its end, so the
    model never sees a false boundary. Training windows start at random; validation ones at the start.
    """

    def __init__(self, proteins: Sequence[Sequence[int]], bos_id: int, eos_id: int, max_length: int, random: bool):
        self.proteins = proteins
        self.bos_id, self.eos_id = bos_id, eos_id
        self.max_length = max_length
        self.random = random

    def __len__(self) -> int:
        return len(self.proteins)

    def window_length(self, index: int) -> int:
        return min(len(self.proteins[index]) + 2, self.max_length)

    def __getitem__(self, index: int) -> torch.Tensor:
        tokens = [self.bos_id, *self.proteins[index], self.eos_id]
        extra = len(tokens) - self.max_length
        start = int(torch.randint(0, extra + 1, ())) if self.random and extra > 0 else 0
        return torch.tensor(tokens[start : start + self.max_length], dtype=torch.long)  # (l,)


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of proteins of similar length, so padding stays small.

    With `shuffle`, each pass draws a fresh permutation, sorts it by length within pools of `pool` batches
    and shuffles the batch order: batches stay length-homogeneous without always pairing the same proteins.
    Without it, batches follow length order (a deterministic validation pass).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0, pool: int = 50):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = pool
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:
            order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], i))
            yield from (order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size))
            return
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        permutation = torch.randperm(len(self.lengths), generator=generator).tolist()
        span = self.batch_size * self.pool
        batches = []
        for start in range(0, len(permutation), span):
            chunk = sorted(permutation[start : start + span], key=lambda i: self.lengths[i])
            batches += [chunk[s : s + self.batch_size] for s in range(0, len(chunk), self.batch_size)]
        for b in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[b]


def protein_loader(
    proteins: list[list[int]],
    tokenizer: PreTrainedTokenizerFast,
    max_length: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
) -> DataLoader:
    """Length-bucketed batches of tokenized proteins (residue ids, no specials): random windows when shuffling."""
    windows = ProteinWindows(proteins, tokenizer.bos_token_id, tokenizer.eos_token_id, max_length, shuffle)
    lengths = [windows.window_length(i) for i in range(len(windows))]
    return DataLoader(
        windows,
        batch_sampler=LengthBucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=seed),
        num_workers=num_workers,
        collate_fn=partial(_pad_and_batch, tokenizer=tokenizer),
    )


def encode_proteins(tokenizer: PreTrainedTokenizerFast, sequences: list[str]) -> list[list[int]]:
    """Residue ids of each sequence, without <cls>/<eos> (the windows add them)."""
    return [e.ids for e in tokenizer.backend_tokenizer.encode_batch(sequences, add_special_tokens=False)]


def _pad_and_batch(windows: list[torch.Tensor], tokenizer: PreTrainedTokenizerFast) -> Batch:
    ids = torch.nn.utils.rnn.pad_sequence(windows, batch_first=True, padding_value=tokenizer.pad_token_id)  # (B, L)
    return make_batch(ids, tokenizer)
