"""A domain is what differs between kinds of sequence: tokenizer, alphabet, framing, records, unit.

The engine (objectives, sampling, infilling, generation) is written once; it asks the model's `Domain` which ids
generation must never emit, which tokens frame a sequence, how a template is parsed, how outputs are written and
what one position is called in printed numbers. The registry of domains is `discrete_diff.domain_registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from transformers import PreTrainedTokenizerFast

from .atomic_files import atomic_write_text
from .batch import Batch
from .templates import TokenTemplate

AT_EOS = ("stop", "break", "ban")
"""What a generated text sample does with a drawn [EOS], the end of a training document: `stop` ends the sample
there, `break` shows it as a line of its own (`[EOS]`), `ban` never draws it (each sample one document)."""


@dataclass(frozen=True)
class Record:
    """One generated or filled sequence, as written out."""

    id: str
    description: str
    """Header text: the id and the settings that produced it."""
    text: str


@dataclass(frozen=True)
class EvaluationData:
    """Sequences read from a user's file, ready for the likelihood bound."""

    batches: Iterable[Batch]
    tokens_per_unit: float
    """Scored tokens per unit of the domain (characters, residues)."""
    notes: list[str]
    """What the reader met that a user should know (characters outside the vocabulary, dropped records)."""
    units: list[float] | None = None
    """Units in each batch, where the tokens per unit vary between batches (BPE text): a part of the data
    (`eval --max-batches`) is then reported per unit of that part. None: `tokens_per_unit` holds for any part."""

    def tokens_per_unit_of(self, batches: int | None, tokens: int) -> float:
        """Tokens per unit of the first `batches` batches (all when None), which hold `tokens` scored tokens."""
        if self.units is None or batches is None or batches >= len(self.units):
            return self.tokens_per_unit
        return tokens / max(sum(self.units[:batches]), 1.0)


class Domain(ABC):
    """A kind of sequence, with the model's tokenizer."""

    name: ClassVar[str]
    """Stored in checkpoints and config.json."""
    unit: ClassVar[str]
    """What one position is called in every printed number: character, residue."""
    recommended_guidance_scale: ClassVar[float]
    """The classifier-free guidance w to start from with a label (README, "Labels and guidance", says why; the web
    app fills it in once a label is chosen). The one place this advice lives in code."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast) -> None:
        self.tokenizer = tokenizer

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    @property
    def mask_id(self) -> int:
        return self.tokenizer.mask_token_id

    @abstractmethod
    def framing(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The ids before and after every sequence (proteins: <cls> ... <eos>; text: none)."""

    @abstractmethod
    def banned_ids(self, *, allow_noncanonical: bool = False, document_breaks: bool = False) -> list[int]:
        """Ids generation never draws. `document_breaks` lets text samples contain [EOS] (a document boundary)."""

    @abstractmethod
    def parse_template(self, text: str, where: str, *, allow_noncanonical: bool = False) -> TokenTemplate:
        """A prompt (text with [MASK:N] blanks) or template ([5-15]MOTIF[10-30]) in token ids, framing included."""

    @abstractmethod
    def decode(self, ids: Sequence[int], *, at_eos: str = "break") -> str:
        """The text of a sequence's ids (without framing); `at_eos` (see AT_EOS) for document ends inside it."""

    @abstractmethod
    def format_records(self, records: Sequence[Record]) -> str:
        """Records as the domain writes them (text blocks, FASTA)."""

    def write_records(self, path: str | Path, records: Sequence[Record]) -> Path:
        return atomic_write_text(path, self.format_records(records))

    @abstractmethod
    def evaluation_data(self, path: str, *, length: int, batch_size: int) -> EvaluationData:
        """Read a user's file (text file, folder, JSONL; FASTA) into batches of at most `length` tokens."""
