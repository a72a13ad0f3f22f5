"""Class labels: the vocabulary a labelled data set defines, and labelled items for the data loaders.

A label is a name (a genre, a protein family). The vocabulary is the sorted distinct names; label i is the
network's embedding row i and the row after the last name is the null label: "no label", what label dropout
trains and what sampling uses when no label is asked for. Checkpoints and exported models keep the names as plain
data (`data["labels"]`), so sampling can refuse an unknown name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .errors import InvalidArgument

LABELS_KEY = "labels"
"""The entry of a data description (and so of a checkpoint's `data`) that holds the label names."""


@dataclass(frozen=True)
class LabelVocabulary:
    names: tuple[str, ...]
    """Sorted distinct label names; id i is names[i]."""

    @classmethod
    def from_values(cls, values: Iterable[Any]) -> LabelVocabulary:
        """The vocabulary of the labels seen in a data set (any value is named by its string)."""
        return cls(tuple(sorted({str(value) for value in values})))

    @property
    def null_id(self) -> int:
        """The null label: one past the last name."""
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def id_of(self, name: Any) -> int:
        """The id of a label name; an unknown one is an error that lists the known names."""
        try:
            return self.names.index(str(name))
        except ValueError:
            raise InvalidArgument("label", f"{name!r} is unknown; known labels: {', '.join(self.names)}") from None

    def ids(self, values: Sequence[Any]) -> list[int]:
        return [self.id_of(value) for value in values]


class Labelled(Dataset):
    """Items of `dataset` paired with a label id each: `labels[i]` for key `i` or `(i, ...)` (a key with a crop)."""

    def __init__(self, dataset: Dataset, labels: Sequence[int]) -> None:
        if len(labels) != len(dataset):  # type: ignore[arg-type]
            raise ValueError(f"{len(labels)} labels for {len(dataset)} items")  # type: ignore[arg-type]
        self.dataset, self.labels = dataset, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: int | tuple) -> tuple[Tensor, int]:
        index = key[0] if isinstance(key, tuple) else key
        return self.dataset[key], int(self.labels[index])


def split_labels(items: Sequence[Tensor | tuple[Tensor, int]]) -> tuple[list[Tensor], Tensor | None]:
    """A collate function's items as (tensors, (B,) long label ids or None when the items carry no labels)."""
    if not items or not isinstance(items[0], tuple):
        return list(items), None  # type: ignore[arg-type]
    tensors = [item[0] for item in items]  # type: ignore[index]
    return tensors, torch.tensor([item[1] for item in items], dtype=torch.long)  # type: ignore[index]
