"""Sequence identity from global alignments (Biopython's PairwiseAligner), and clustering by identity.

Identity = identical aligned residues / length of the shorter sequence, from a BLOSUM62 alignment with
EMBOSS needle's gap penalties and free end gaps (the convention of CD-HIT): a sequence is identical to itself
(1.0), and a fragment copied from a longer protein counts as a copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from Bio.Align import PairwiseAligner, substitution_matrices

from .tokenizer import AMBIGUOUS, CANONICAL_AMINO_ACIDS

WORD = 2
"""k-mer length of the prefilter (400 possible 2-mers over the 20 residues)."""
ALPHABET = CANONICAL_AMINO_ACIDS + AMBIGUOUS


@lru_cache(maxsize=1)
def make_aligner() -> PairwiseAligner:
    return PairwiseAligner(
        mode="global",
        substitution_matrix=substitution_matrices.load("BLOSUM62"),
        open_gap_score=-10.0,
        extend_gap_score=-0.5,
        end_gap_score=0.0,
    )


def identity(a: str, b: str) -> float:
    """Identical aligned residues over the shorter length, in [0, 1]."""
    if not a or not b:
        return 0.0
    alignment = make_aligner().align(a, b)[0]
    return alignment.counts().identities / min(len(a), len(b))


def nearest_identity(query: str, references: Sequence[str], candidates: int = 8) -> float:
    """Highest identity of `query` to any reference.

    Alignment scores (fast, no traceback) pick the `candidates` best-scoring references; identity is computed
    for those only. The most identical reference is almost always among the best-scoring ones.
    """
    if not references:
        raise ValueError("no reference sequences to compare with")
    aligner = make_aligner()
    scores = np.array([aligner.score(query, r) for r in references])
    best = np.argsort(-scores, kind="stable")[:candidates]
    return max(identity(query, references[i]) for i in best)


def mean_pairwise_identity(sequences: Sequence[str]) -> float:
    """Average identity over all unordered pairs (diversity: lower is more diverse)."""
    if len(sequences) < 2:
        raise ValueError("need at least two sequences for pairwise identity")
    values = [identity(a, b) for i, a in enumerate(sequences) for b in sequences[i + 1 :]]
    return float(np.mean(values))


def _kmer_counts(sequence: str) -> np.ndarray:
    """Counts of each 2-mer (over 25 letters) as a dense vector."""
    index = {c: i for i, c in enumerate(ALPHABET)}
    codes = np.array([index.get(c, 0) for c in sequence], dtype=np.int64)
    counts = np.zeros(len(ALPHABET) ** WORD, dtype=np.int32)
    if len(codes) >= WORD:
        np.add.at(counts, codes[:-1] * len(ALPHABET) + codes[1:], 1)
    return counts


def cluster_by_identity(sequences: Sequence[str], threshold: float, max_checks: int = 20) -> list[int]:
    """Greedy clustering (CD-HIT style): longest first, each joins the first representative it matches.

    A k-mer filter skips alignments that cannot reach the threshold: at identity t over n residues at most
    (1 - t) n positions differ, and each destroys at most WORD shared 2-mers. Of the representatives that pass,
    the `max_checks` sharing most 2-mers are aligned. Returns a cluster id per sequence.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"identity threshold must be in (0, 1], got {threshold}")
    order = sorted(range(len(sequences)), key=lambda i: (-len(sequences[i]), i))
    representatives: list[int] = []
    rep_counts = np.zeros((len(sequences), len(ALPHABET) ** WORD), dtype=np.int32)  # (N, 625), first R used
    cluster = [0] * len(sequences)
    for i in order:
        seq = sequences[i]
        counts = _kmer_counts(seq)
        assigned = None
        if representatives:
            shared = np.minimum(rep_counts[: len(representatives)], counts).sum(axis=1)  # (R,)
            n = len(seq)  # representatives are at least as long: seq is the shorter one
            needed = (n - WORD + 1) - WORD * int(np.ceil((1.0 - threshold) * n))
            for r in np.argsort(-shared, kind="stable")[:max_checks]:
                if shared[r] < needed:
                    break
                if identity(seq, sequences[representatives[r]]) >= threshold:
                    assigned = int(r)
                    break
        if assigned is None:
            assigned = len(representatives)
            rep_counts[assigned] = counts
            representatives.append(i)
        cluster[i] = assigned
    return cluster


def residue_masks(sequence: str) -> dict[str, int]:
    """Residue -> bit mask of the positions holding it (the references' side of `common_residues`)."""
    masks: dict[str, int] = {}
    for position, residue in enumerate(sequence):
        masks[residue] = masks.get(residue, 0) | (1 << position)
    return masks


def common_residues(query: str, reference: str, masks: dict[str, int] | None = None) -> int:
    """Length of the longest common subsequence: no alignment of the two pairs more identical residues, so it
    bounds identity from above at a seventh of an alignment's cost (bit-parallel rows, Hyyro 2004)."""
    masks = residue_masks(reference) if masks is None else masks
    full = (1 << len(reference)) - 1
    row = full  # a zero bit per reference position matched so far
    for residue in query:
        matched = row & masks.get(residue, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(reference) - row.bit_count()


def close_to_any(queries: Sequence[str], references: Sequence[str], threshold: float) -> list[bool]:
    """Whether each query is at least `threshold` identical to some reference. Exact: every pair the common
    subsequence bound does not rule out is aligned, the most promising first, until one reaches the threshold."""
    masks = [residue_masks(reference) for reference in references]
    flags = []
    for query in queries:
        bounds = [
            (common_residues(query, reference, mask) / max(1, min(len(query), len(reference))), index)
            for index, (reference, mask) in enumerate(zip(references, masks, strict=True))
        ]
        candidates = sorted((pair for pair in bounds if pair[0] >= threshold), reverse=True)
        flags.append(any(identity(query, references[index]) >= threshold for _, index in candidates))
    return flags
