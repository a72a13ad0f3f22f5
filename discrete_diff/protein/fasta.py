"""FASTA in and out through Biopython, with a validation policy the user chooses.

Every residue is upper-cased, one trailing `*` (stop) is stripped and gaps (`-`, `.`) are removed. Spaces inside
a sequence are dropped by Biopython's parser (some files group residues in blocks of ten). Ambiguous residues
are kept, replaced or make the record dropped; any other character (a digit, `*` inside a sequence, ...) is an
error naming the file, record, position and character, or with `invalid="skip"` drops the record and is counted.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from Bio.Seq import Seq
from Bio.SeqIO import write as write_records
from Bio.SeqIO.FastaIO import SimpleFastaParser
from Bio.SeqRecord import SeqRecord

from ..atomic_files import atomic_write_text
from ..errors import UserInputError
from .tokenizer import AMBIGUOUS, CANONICAL_AMINO_ACIDS

GAPS = "-."
REPLACEMENTS = {"U": "C", "O": "K", "B": "D", "Z": "E", "X": "X"}
"""`ambiguous="replace"`: selenocysteine is a cysteine analogue, pyrrolysine a lysine derivative, B is D or N,
Z is E or Q; X (unknown) has no canonical stand-in and stays X."""


@dataclass(frozen=True)
class FastaPolicy:
    """How records are cleaned and which are kept."""

    ambiguous: str = "keep"
    """keep | replace | drop: what to do with X, B, Z, U, O."""
    invalid: str = "error"
    """error | skip: any other character stops with an error, or drops its record (counted)."""
    duplicates: str = "error"
    """error | keep: a record id seen twice in one file."""
    min_length: int = 1
    """Records shorter than this (after cleaning) are dropped and counted."""
    max_length: int | None = None
    """Records longer than this are dropped and counted (None: no limit; training crops instead)."""

    def __post_init__(self) -> None:
        for name, allowed in (("ambiguous", ("keep", "replace", "drop")), ("invalid", ("error", "skip"))):
            if getattr(self, name) not in allowed:
                raise UserInputError(f"FASTA policy {name}={getattr(self, name)!r}: choose one of {', '.join(allowed)}")
        if self.duplicates not in ("error", "keep"):
            raise UserInputError(f"FASTA policy duplicates={self.duplicates!r}: choose one of error, keep")
        if self.min_length < 1 or (self.max_length is not None and self.max_length < self.min_length):
            raise UserInputError(
                f"FASTA policy lengths: need 1 <= min_length <= max_length, got {self.min_length}, {self.max_length}"
            )


@dataclass(frozen=True)
class ProteinRecord:
    id: str
    description: str
    sequence: str
    label: str | None = None
    """The record's label in a labelled set (its file's, or a `key=value` field of its header)."""


def header_value(record: ProteinRecord, key: str, path: Path | str) -> str:
    """The value of a `key=value` word in the record's header line (e.g. `>P1 family=globin`); missing: an error."""
    prefix = f"{key}="
    values = [word[len(prefix) :] for word in record.description.split() if word.startswith(prefix)]
    if len(values) != 1 or not values[0]:
        problem = "no" if not values else "an empty" if len(values) == 1 else "more than one"
        raise UserInputError(f"{path}: record {record.id!r} has {problem} {key}=VALUE field in its header")
    return values[0]


@dataclass
class ReadReport:
    """What reading one file kept and dropped, so a user learns why records are missing."""

    path: Path
    records: int = 0
    kept: int = 0
    dropped: dict[str, list[str]] = field(default_factory=dict)
    """reason -> ids of the dropped records."""
    replaced_residues: int = 0

    def drop(self, reason: str, record_id: str) -> None:
        self.dropped.setdefault(reason, []).append(record_id)

    def summary(self) -> str:
        parts = [f"{self.path}: kept {self.kept} of {self.records} records"]
        for reason, ids in sorted(self.dropped.items()):
            parts.append(f"dropped {len(ids)} {reason} (first: {ids[0]})")
        if self.replaced_residues:
            parts.append(f"replaced {self.replaced_residues} ambiguous residues")
        return "; ".join(parts)


def open_text(path: Path) -> TextIO:
    """A text handle on a plain or gzipped file (recognised by its magic bytes, not its name)."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline=None)
    return open(path, encoding="utf-8", newline=None)


def read_fasta(path: str | Path, policy: FastaPolicy | None = None) -> tuple[list[ProteinRecord], ReadReport]:
    """Clean, validated records of a FASTA file (plain or gzipped) and a report of what was dropped."""
    policy = policy or FastaPolicy()
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"{path}: FASTA file not found")
    report = ReadReport(path)
    records: list[ProteinRecord] = []
    seen: dict[str, int] = {}
    try:
        with open_text(path) as handle:
            _check_starts_like_fasta(handle, path)
            for title, raw in SimpleFastaParser(handle):
                report.records += 1
                record_id = title.split(maxsplit=1)[0] if title.strip() else f"#{report.records}"
                if record_id in seen and policy.duplicates == "error":
                    raise UserInputError(
                        f"{path}: record {report.records} has the id {record_id!r} of record {seen[record_id]} "
                        "(duplicate ids; make them unique or allow duplicates)"
                    )
                seen.setdefault(record_id, report.records)
                sequence = _clean(raw, path, record_id, policy, report)
                if sequence is None:
                    continue
                records.append(ProteinRecord(record_id, title, sequence))
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, OSError) as error:
        raise UserInputError(f"{path}: not a readable text FASTA file ({type(error).__name__}: {error})") from None
    report.kept = len(records)
    if report.records == 0:
        raise UserInputError(f"{path}: holds no FASTA records")
    if not records:
        raise UserInputError(f"no usable records: {report.summary()}")
    return records, report


def _check_starts_like_fasta(handle: TextIO, path: Path) -> None:
    """Biopython silently skips text before the first '>', so a non-FASTA file would read as empty."""
    position = handle.tell() if handle.seekable() else None
    for line_number, line in enumerate(handle, start=1):
        if line.strip():
            if not line.startswith(">"):
                raise UserInputError(
                    f"{path}: not a FASTA file (line {line_number} starts with {line.strip()[:20]!r}, expected '>')"
                )
            break
    if position is None:
        raise UserInputError(f"{path}: cannot re-read the file after checking its first line")
    handle.seek(position)


def _clean(raw: str, path: Path, record_id: str, policy: FastaPolicy, report: ReadReport) -> str | None:
    """The cleaned sequence, or None when the record is dropped (and counted in the report)."""
    upper = raw.upper()
    if upper.endswith("*"):
        upper = upper[:-1]
    allowed = set(CANONICAL_AMINO_ACIDS) | set(AMBIGUOUS) | set(GAPS)
    for position, char in enumerate(upper, start=1):
        if char not in allowed:
            if policy.invalid == "skip":
                report.drop("records with invalid characters", record_id)
                return None
            raise UserInputError(
                f"{path}: record {record_id!r} has the invalid character {char!r} at position {position}"
            )
    sequence = "".join(c for c in upper if c not in GAPS)
    if not sequence:
        report.drop("empty records", record_id)
        return None
    if any(c in AMBIGUOUS for c in sequence):
        if policy.ambiguous == "drop":
            report.drop("records with ambiguous residues", record_id)
            return None
        if policy.ambiguous == "replace":
            report.replaced_residues += sum(c in AMBIGUOUS and REPLACEMENTS[c] != c for c in sequence)
            sequence = "".join(REPLACEMENTS.get(c, c) for c in sequence)
    if len(sequence) < policy.min_length:
        report.drop(f"records shorter than {policy.min_length}", record_id)
        return None
    if policy.max_length is not None and len(sequence) > policy.max_length:
        report.drop(f"records longer than {policy.max_length}", record_id)
        return None
    return sequence


def format_fasta(records: Iterable[ProteinRecord]) -> str:
    """FASTA text written by Biopython (60 residues a line); the description line is kept as given."""
    buffer = io.StringIO()
    seq_records = (SeqRecord(Seq(r.sequence), id=r.id, description=r.description) for r in records)
    write_records(seq_records, buffer, "fasta")
    return buffer.getvalue()


def write_fasta(path: str | Path, records: Iterable[ProteinRecord]) -> Path:
    """Write records atomically: a crash leaves either the old file or the complete new one."""
    return atomic_write_text(path, format_fasta(records))
