"""Protein training data: one protein per example, never packed, batched by length."""

from __future__ import annotations

import hashlib
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..errors import UserInputError
from ..labels import LABELS_KEY, Labelled, LabelVocabulary
from ..protein.batching import (
    ProteinWindows,
    encode_proteins,
    length_bucket_batches,
    length_sorted_batches,
    pad_and_batch,
)
from ..protein.builtin_sets import DATASETS, sequences_path
from ..protein.domain import ProteinDomain
from ..protein.fasta import FastaPolicy, ProteinRecord, header_value, read_fasta
from ..protein.identity import close_to_any, cluster_by_identity
from ..protein.tokenizer import build_protein_tokenizer
from .data import SequenceDataModule, check_split_and_batch
from .resumable import epoch_generator, resumable_loader


def resolve_fasta(corpus: str, data_dir: str) -> Path:
    """A built-in set name (fetched on first use) or a path to a FASTA file."""
    if corpus in DATASETS:
        return sequences_path(corpus, data_dir)
    return Path(corpus).expanduser()


def split_records(
    records: list[ProteinRecord], val_fraction: float, identity_threshold: float | None = None
) -> tuple[list[ProteinRecord], list[ProteinRecord]]:
    """Deterministic validation split by sequence: groups are ranked by a hash, the first ones held out (a group
    that would take the held-out share past twice `val_fraction` is passed over).

    A group is one distinct sequence (duplicates stay together) or, with `identity_threshold`, one identity
    cluster; then training proteins at that identity or more to a held-out one are left out of both sides, so no
    held-out protein is that close to any training one (a split of a family, not of its near-copies). Independent
    of record order.
    """
    sequences = [r.sequence for r in records]
    if identity_threshold is None:
        keys = sequences
    else:
        distinct = sorted(set(sequences))
        clusters = cluster_by_identity(distinct, identity_threshold)
        representative: dict[int, str] = {}
        for seq, cluster in zip(distinct, clusters, strict=True):
            representative.setdefault(cluster, seq)
        key_of = {seq: representative[c] for seq, c in zip(distinct, clusters, strict=True)}
        keys = [key_of[s] for s in sequences]
    sizes = Counter(keys)
    if len(sizes) < 2:
        raise UserInputError("cannot split: all records fall in one sequence group; add more distinct proteins")
    target = max(1, round(val_fraction * len(records)))
    ranked = sorted(sizes, key=lambda k: hashlib.sha256(k.encode()).hexdigest())
    held_out: set[str] = set()
    count = 0
    for key in ranked:
        if count >= target or len(held_out) == len(sizes) - 1:
            break
        if count + sizes[key] > 2 * target:  # one dominant cluster would leave almost nothing to train on
            continue
        held_out.add(key)
        count += sizes[key]
    if not held_out:  # every group is larger than twice the target: the smallest one
        held_out.add(min(ranked, key=lambda k: sizes[k]))
    train = [r for r, k in zip(records, keys, strict=True) if k not in held_out]
    validation = [r for r, k in zip(records, keys, strict=True) if k in held_out]
    if identity_threshold is not None:
        train = without_close_proteins(train, validation, identity_threshold)
    return train, validation


def without_close_proteins(
    train: list[ProteinRecord], held_out: list[ProteinRecord], threshold: float
) -> list[ProteinRecord]:
    """The training records less those at `threshold` identity or more to a held-out one (greedy clusters alone
    leave members of two clusters that close), with a line on stderr saying how many went."""
    candidates = sorted({r.sequence for r in train})
    flags = close_to_any(candidates, sorted({r.sequence for r in held_out}), threshold)
    close = {sequence for sequence, flag in zip(candidates, flags, strict=True) if flag}
    kept = [r for r in train if r.sequence not in close]
    if len(kept) < len(train):
        print(
            f"data.split_identity={threshold}: {len(train) - len(kept)} of {len(train)} training proteins left out, "
            "as close to a held-out one",
            file=sys.stderr,
        )
    return kept


class ProteinDataModule(SequenceDataModule):
    """Proteins from a FASTA file or a built-in set (`proteome`, `hemopexin`, `families`), ESM-2 vocabulary.

    Loss and bits are per residue (<cls>/<eos>/<pad> are never masked nor scored). `prepare_data` fetches a
    built-in set; `setup` reads, splits and encodes the records. A labelled set trains a label-conditioned model:
    `labels` maps each label to a FASTA file or built-in set (read instead of `corpus`), or `label_field` names a
    `key=value` field of the headers of `corpus` (the built-in `families` set has `family=`).
    """

    def __init__(
        self,
        corpus: str | None = None,
        max_length: int = 256,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        split_identity: float | None = None,
        ambiguous: str = "keep",
        invalid: str = "error",
        duplicates: str = "error",
        min_residues: int = 1,
        max_residues: int | None = None,
        seed: int = 0,
        data_dir: str = "data",
        num_workers: int = 0,
        labels: dict[str, str] | None = None,
        label_field: str | None = None,
        label_balance: float = 0.0,
    ) -> None:
        """corpus: a FASTA path or built-in set name (default: hemopexin; not with `labels`).

        label_balance: how evenly a labelled set's labels are drawn in training, beta in [0, 1]. Each epoch draws as
        many training proteins as the set has, protein i with probability proportional to n(label_i)^-beta, so a
        label's share of the draws is proportional to n(label)^(1 - beta): 0 is the data as it is (each protein once
        per epoch), 1 every label equally often (a small family's proteins repeated, a large one's subsampled).
        """
        super().__init__()
        if labels is not None and (corpus is not None or label_field is not None):
            raise UserInputError("data.labels names the FASTA file of each label: give no data.corpus or label_field")
        if labels is not None and not labels:
            raise UserInputError("data.labels is empty: map each label to a FASTA file or built-in set")
        if not 0.0 <= label_balance <= 1.0:
            raise UserInputError(f"data.label_balance must be in [0, 1], got {label_balance}")
        if label_balance and labels is None and label_field is None:
            raise UserInputError("data.label_balance balances labels: give data.labels or data.label_field too")
        self.init_args = {
            "corpus": corpus,
            "labels": labels,
            "label_field": label_field,
            "label_balance": label_balance,
            "max_length": max_length,
            "batch_size": batch_size,
            "val_fraction": val_fraction,
            "split_identity": split_identity,
            "ambiguous": ambiguous,
            "invalid": invalid,
            "duplicates": duplicates,
            "min_residues": min_residues,
            "max_residues": max_residues,
            "seed": seed,
            "data_dir": data_dir,
        }
        if max_length < 3:
            raise UserInputError(f"data.max_length must be at least 3 (<cls>, a residue, <eos>), got {max_length}")
        check_split_and_batch(val_fraction, batch_size)
        if split_identity is not None and not 0.0 < split_identity <= 1.0:
            raise UserInputError(f"data.split_identity must be in (0, 1], got {split_identity}")
        self.corpus = "hemopexin" if corpus is None and labels is None else corpus
        self.labels = {str(label): str(source) for label, source in labels.items()} if labels else None
        self.label_field = label_field
        self.label_balance = label_balance
        self.data_dir = data_dir
        self.max_length = max_length
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_identity = split_identity
        self.seed = seed
        self.num_workers = num_workers
        self.policy = FastaPolicy(ambiguous, invalid, duplicates, min_residues, max_residues)
        self.vocabulary: LabelVocabulary | None = None
        self._domain: ProteinDomain | None = None

    def sources(self) -> dict[str | None, str]:
        """label -> FASTA path or built-in set name; one entry under None for an unlabelled or header-labelled set."""
        return dict(self.labels) if self.labels is not None else {None: self.corpus}

    def prepare_data(self) -> None:
        """Fetch built-in sets (a FASTA path needs nothing)."""
        for source in self.sources().values():
            resolve_fasta(source, self.data_dir)

    def read_records(self) -> list[ProteinRecord]:
        """Every record, labelled by its file (`labels`) or its header field (`label_field`)."""
        records: list[ProteinRecord] = []
        for label, source in self.sources().items():
            path = resolve_fasta(source, self.data_dir)
            found, report = read_fasta(path, self.policy)
            if report.dropped:
                print(report.summary(), file=sys.stderr)
            if self.label_field is not None:
                found = [replace(r, label=header_value(r, self.label_field, path)) for r in found]
            records += found if label is None else [replace(r, label=label) for r in found]
        return records

    def setup(self, stage: str | None = None) -> None:
        if self._domain is not None:
            return
        tokenizer = build_protein_tokenizer()
        records = self.read_records()
        self.vocabulary = None if records[0].label is None else LabelVocabulary.from_values(r.label for r in records)
        self.train_records, self.validation_records = split_records(records, self.val_fraction, self.split_identity)
        self.proteins = {
            "train": encode_proteins(tokenizer, [r.sequence for r in self.train_records]),
            "validation": encode_proteins(tokenizer, [r.sequence for r in self.validation_records]),
        }
        self._domain = ProteinDomain(tokenizer)

    def label_vocabulary(self) -> LabelVocabulary | None:
        return self.vocabulary

    @property
    def domain(self) -> ProteinDomain:
        if self._domain is None:
            raise RuntimeError("the data module is not set up: call prepare_data() and setup() first")
        return self._domain

    def length_distribution(self) -> dict[str, list[int]]:
        """Residue counts of the training proteins (before cropping) as sorted lengths and their counts."""
        counts = Counter(len(r.sequence) for r in self.train_records)
        lengths = sorted(counts)
        return {"length": lengths, "count": [counts[n] for n in lengths]}

    def description(self) -> dict[str, Any]:
        spec = {"class_path": f"{type(self).__module__}.{type(self).__qualname__}", "init_args": dict(self.init_args)}
        description = {"datamodule": spec, "max_length": self.max_length, "lengths": self.length_distribution()}
        if self.vocabulary is not None:
            description[LABELS_KEY] = list(self.vocabulary.names)
        return description

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        """Training: length buckets and window crops drawn afresh each epoch from `seed`, resumable."""
        tokenizer = self.tokenizer
        windows = ProteinWindows(self.proteins[split], tokenizer.bos_token_id, tokenizer.eos_token_id, self.max_length)
        training = split == "train"
        lengths = [windows.window_length(i) for i in range(len(windows))]
        shuffle = training and self.shuffles_training()
        weights = self.draw_weights() if shuffle and self.label_balance else None  # an unshuffled pass stays in order
        plan = LengthBuckets(lengths, batch_size, shuffle=shuffle, weights=weights)
        sampler = self.share(plan, split, training=training, seed=self.seed)
        items = windows
        if self.vocabulary is not None:
            records = self.train_records if training else self.validation_records
            items = Labelled(windows, self.vocabulary.ids([r.label for r in records]))
        return resumable_loader(items, sampler, partial(pad_and_batch, tokenizer=tokenizer), self.num_workers)

    def draw_weights(self) -> list[float]:
        """Each training protein's draw weight, n(its label)^-label_balance (see `__init__`)."""
        counts = Counter(r.label for r in self.train_records)
        return [counts[r.label] ** -self.label_balance for r in self.train_records]

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", batch_size=self.batch_size)

    def validation_batches(self, batch_size: int | None = None) -> DataLoader:
        return self._loader("validation", batch_size=batch_size or self.batch_size)


class LengthBuckets:
    """The epoch plan of proteins: shuffled length buckets with window crops, or one pass in length order.

    With `weights` (shuffled plans only) an epoch is as many draws with replacement, protein i with probability
    proportional to weights[i], in length buckets as well; the draws are a function of (seed, epoch), so a resumed
    run draws what the uninterrupted one would."""

    def __init__(
        self, lengths: list[int], batch_size: int, shuffle: bool, weights: Sequence[float] | None = None
    ) -> None:
        if weights is not None and (not shuffle or len(weights) != len(lengths)):
            raise ValueError("weights need a shuffled plan and one weight per protein")
        self.lengths, self.batch_size, self.shuffle, self.weights = lengths, batch_size, shuffle, weights

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)  # every pool but the last fills whole batches

    def batches(self, seed: int, epoch: int) -> list[list]:
        if not self.shuffle:
            return length_sorted_batches(self.lengths, self.batch_size)
        generator = epoch_generator(seed, epoch)
        if self.weights is None:
            return length_bucket_batches(self.lengths, self.batch_size, generator)
        weights = torch.tensor(self.weights, dtype=torch.float64)  # (N,)
        drawn = torch.multinomial(weights, len(self.lengths), replacement=True, generator=generator).tolist()
        batches = length_bucket_batches([self.lengths[i] for i in drawn], self.batch_size, generator)
        return [[(drawn[draw], crop) for draw, crop in batch] for batch in batches]
