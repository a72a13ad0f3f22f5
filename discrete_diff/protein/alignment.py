"""Family alignments for the profile HMM: read from an aligned FASTA file (Biopython), or built with FAMSA.

A user with only FASTA files of a family gets the same HMM hit rate as one with a curated alignment: the
training sequences are aligned with pyfamsa (MIT bindings of FAMSA, which scales to thousands of sequences).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import pyfamsa
from Bio import AlignIO, SeqIO
from pyhmmer.easel import Alphabet

from ..errors import UserInputError
from .fasta import open_text

ALIGNMENT_SYMBOLS = set(Alphabet.amino().symbols)
"""Residues, ambiguity codes and gaps that HMMER's amino alphabet digitizes ('.' is read as a gap)."""


def read_alignment(path: str | Path, keep: Collection[str] | None = None) -> dict[str, str]:
    """Rows of an aligned FASTA file (id -> upper-cased row), optionally only the ids in `keep`.

    Leaving out the held-out rows keeps the HMM from having seen the natural sequences it is judged on.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"{path}: alignment file not found")
    try:
        with open_text(path) as handle:
            alignment = AlignIO.read(handle, "fasta")
    except ValueError as error:
        if "same length" in str(error):
            raise UserInputError(_ragged_message(path)) from None
        raise UserInputError(f"{path}: not an aligned FASTA file ({str(error).splitlines()[0]})") from None
    except (UnicodeDecodeError, EOFError, OSError) as error:
        raise UserInputError(f"{path}: not a readable aligned FASTA file ({type(error).__name__})") from None
    rows: dict[str, str] = {}
    for record in alignment:
        if keep is None or record.id in keep:
            rows[record.id] = _checked_row(path, record.id, str(record.seq).upper().replace(".", "-"))
    if len(rows) < 2:
        raise UserInputError(f"{path}: need at least two aligned rows (got {len(rows)})")
    return rows


def _ragged_message(path: Path) -> str:
    """Names the first row whose length differs from the first row's."""
    with open_text(path) as handle:
        records = SeqIO.parse(handle, "fasta")
        first = next(records)
        for number, record in enumerate(records, start=2):
            if len(record.seq) != len(first.seq):
                return (
                    f"{path}: not an alignment: record {number} ({record.id!r}) has {len(record.seq)} columns, "
                    f"record 1 ({first.id!r}) has {len(first.seq)}"
                )
    return f"{path}: not an alignment: rows of different lengths"


def _checked_row(path: Path, record_id: str, row: str) -> str:
    for position, char in enumerate(row, start=1):
        if char not in ALIGNMENT_SYMBOLS:
            raise UserInputError(
                f"{path}: record {record_id!r} has {char!r} at column {position}, not a residue or gap"
            )
    return row


def align_sequences(sequences: Sequence[str]) -> dict[str, str]:
    """A multiple alignment of `sequences` built by FAMSA; rows are named by position ("0", "1", ...)."""
    if len(sequences) < 2:
        raise UserInputError(f"need at least two sequences to align a family (got {len(sequences)})")
    named = [pyfamsa.Sequence(str(i).encode(), s.encode()) for i, s in enumerate(sequences)]
    aligned = pyfamsa.Aligner().align(named)
    return {row.id.decode(): row.sequence.decode() for row in aligned}
