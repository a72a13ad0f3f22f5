"""Family membership: a profile HMM built with pyhmmer from the family's alignment, searched against sequences."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import pyhmmer
from pyhmmer.easel import Alphabet, DigitalSequenceBlock, TextMSA, TextSequence
from pyhmmer.plan7 import HMM, Background, Builder

from ..errors import UserInputError
from .fasta import open_text

EVALUE_THRESHOLD = 1e-3
SEARCH_SPACE = 1000
"""E-values are computed as if searching this many sequences, the same for every set, so hit rates compare
between sets of different sizes (hmmsearch's default uses each set's own size)."""


def read_alignment(path: str | Path, keep: Collection[str] | None = None) -> dict[str, str]:
    """Rows of an aligned FASTA file (id -> upper-cased row), optionally only the ids in `keep`.

    Leaving out the held-out rows keeps the HMM from having seen the natural sequences it is judged on.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"{path}: alignment file not found")
    rows: dict[str, str] = {}
    name, parts = None, []
    with open_text(path) as handle:
        for line in handle:
            if line.startswith(">"):
                if name is not None:
                    rows[name] = "".join(parts).upper().replace(".", "-")
                name, parts = line[1:].split(maxsplit=1)[0] if line[1:].strip() else "", []
            elif name is not None:
                parts.append(line.strip())
    if name is not None:
        rows[name] = "".join(parts).upper().replace(".", "-")
    if keep is not None:
        rows = {k: v for k, v in rows.items() if k in keep}
    if len(rows) < 2 or len({len(r) for r in rows.values()}) != 1:
        raise UserInputError(f"{path}: need at least two aligned rows of equal length (got {len(rows)} rows)")
    return rows


def build_hmm(rows: dict[str, str], name: str = "family") -> HMM:
    """A profile HMM from aligned rows (HMMER's default architecture and weighting)."""
    alphabet = Alphabet.amino()
    msa = TextMSA(
        name=name.encode(),
        sequences=[TextSequence(name=k.encode(), sequence=v) for k, v in rows.items()],
    ).digitize(alphabet)
    hmm, _, _ = Builder(alphabet).build_msa(msa, Background(alphabet))
    return hmm


def hit_flags(hmm: HMM, sequences: Sequence[str], evalue: float = EVALUE_THRESHOLD) -> list[bool]:
    """For each sequence, whether the HMM finds it at E-value <= `evalue`."""
    if not sequences:
        return []
    alphabet = hmm.alphabet
    block = DigitalSequenceBlock(
        alphabet, [TextSequence(name=str(i).encode(), sequence=s).digitize(alphabet) for i, s in enumerate(sequences)]
    )
    found: set[int] = set()
    for hits in pyhmmer.hmmsearch([hmm], block, cpus=1, Z=SEARCH_SPACE, E=evalue):
        for hit in hits:
            if hit.evalue <= evalue:
                found.add(int(hit.name))
    return [i in found for i in range(len(sequences))]


def hit_rate(hmm: HMM, sequences: Sequence[str], evalue: float = EVALUE_THRESHOLD) -> float:
    flags = hit_flags(hmm, sequences, evalue)
    return sum(flags) / len(flags) if flags else float("nan")
