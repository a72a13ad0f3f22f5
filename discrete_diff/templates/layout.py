"""Templates in token ids, and their layout as a row of the sampler: given ids pinned, blanks masked."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import UserInputError
from .syntax import Blank, Given, Template

TokenSegment = tuple[int, ...] | Blank


@dataclass(frozen=True)
class TokenTemplate:
    """Given token ids and blanks in order; `head` / `tail` are pinned framing ids (e.g. <cls> ... <eos>)."""

    segments: tuple[TokenSegment, ...]
    head: tuple[int, ...] = ()
    tail: tuple[int, ...] = ()

    @property
    def blanks(self) -> list[Blank]:
        return [s for s in self.segments if isinstance(s, Blank)]

    def length(self, lengths: Sequence[int]) -> int:
        given = sum(len(s) for s in self.segments if not isinstance(s, Blank))
        return len(self.head) + given + sum(lengths) + len(self.tail)

    def longest(self) -> int:
        return self.length([b.maximum for b in self.blanks])

    def candidates(self) -> list[tuple[int, ...]]:
        """Every combination of blank lengths allowed by the ranges."""
        return list(itertools.product(*(range(b.minimum, b.maximum + 1) for b in self.blanks)))

    def layout(self, lengths: Sequence[int], mask_id: int) -> tuple[Tensor, Tensor]:
        """Token ids (L,) with mask_id in the blanks, and the given positions (L,) bool."""
        if len(lengths) != len(self.blanks):
            raise ValueError(f"need {len(self.blanks)} blank lengths, got {len(lengths)}")
        ids: list[int] = list(self.head)
        given: list[bool] = [True] * len(self.head)
        blank_lengths = iter(lengths)
        for segment in self.segments:
            piece = [mask_id] * next(blank_lengths) if isinstance(segment, Blank) else list(segment)
            ids += piece
            given += [not isinstance(segment, Blank)] * len(piece)
        ids += self.tail
        given += [True] * len(self.tail)
        return torch.tensor(ids, dtype=torch.long), torch.tensor(given, dtype=torch.bool)


def tokenize_text_template(template: Template, tokenizer, forbidden: set[int], where: str = "prompt") -> TokenTemplate:
    """Tokenize each given piece on its own; a piece that reads as a `forbidden` id (e.g. [UNK]) is an error."""
    segments: list[TokenSegment] = []
    for segment in template.segments:
        if isinstance(segment, Blank):
            segments.append(segment)
            continue
        encoding = tokenizer(segment.text, add_special_tokens=False, return_offsets_mapping=True)
        for token, (begin, end) in zip(encoding["input_ids"], encoding["offset_mapping"], strict=True):
            if token in forbidden:
                text = segment.text[begin:end]
                raise UserInputError(
                    f"{where}: {text!r} at character {segment.start + begin + 1} is not in the model's vocabulary "
                    f"(it reads as {tokenizer.convert_ids_to_tokens(token)})"
                )
        segments.append(tuple(encoding["input_ids"]))
    return TokenTemplate(tuple(segments))


def tokenize_protein_template(template: Template, tokenizer, alphabet: str, where: str = "template") -> TokenTemplate:
    """Residues must be letters of `alphabet` (one token each); framing is the domain's to add."""
    vocab = tokenizer.get_vocab()
    segments: list[TokenSegment] = []
    for segment in template.segments:
        if isinstance(segment, Given):
            for offset, residue in enumerate(segment.text):
                if residue not in alphabet or residue not in vocab:
                    raise UserInputError(
                        f"{where}: residue {residue!r} at character {segment.start + offset + 1} is not in the "
                        f"alphabet {alphabet}"
                    )
            segments.append(tuple(vocab[r] for r in segment.text))
        else:
            segments.append(segment)
    return TokenTemplate(tuple(segments))
