"""Family membership: a profile HMM built with pyhmmer from the family's alignment, searched against sequences."""

from __future__ import annotations

from collections.abc import Sequence

import pyhmmer
from pyhmmer.easel import Alphabet, DigitalSequenceBlock, TextMSA, TextSequence
from pyhmmer.plan7 import HMM, Background, Builder

EVALUE_THRESHOLD = 1e-3
SEARCH_SPACE = 1000
"""E-values are computed as if searching this many sequences, the same for every set, so hit rates compare
between sets of different sizes (hmmsearch's default uses each set's own size)."""


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
