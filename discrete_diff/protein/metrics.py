"""Sequence-level protein metrics: composition, low complexity, shuffles, unigram perplexity."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

import numpy as np

from .tokenizer import CANONICAL_AMINO_ACIDS

LOW_COMPLEXITY_WINDOW = 12
LOW_COMPLEXITY_BITS = 2.2
"""SEG's trigger: a 12-residue window whose Shannon entropy is at most 2.2 bits (20 residues: up to 4.32)."""


def composition(sequences: Sequence[str]) -> np.ndarray:
    """Frequencies of the 20 canonical residues (alphabetical), pooled over all sequences; others ignored."""
    counts = Counter(c for s in sequences for c in s)
    vector = np.array([counts[a] for a in CANONICAL_AMINO_ACIDS], dtype=np.float64)
    if vector.sum() == 0:
        raise ValueError("no canonical residues to count")
    return vector / vector.sum()


def kl_divergence(p: np.ndarray, q: np.ndarray, floor: float = 1e-9) -> float:
    """KL(p || q) in bits; `floor` keeps a residue absent from q from making it infinite."""
    q = np.maximum(q, floor)
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits: symmetric, 0 for equal compositions, at most 1."""
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)


def _entropy_bits(window: str) -> float:
    n = len(window)
    return -sum(c / n * math.log2(c / n) for c in Counter(window).values())


def low_complexity_fraction(sequences: Sequence[str]) -> float:
    """Fraction of residues inside some low-entropy window (SEG's first pass, without its extension step)."""
    flagged = total = 0
    for seq in sequences:
        covered = np.zeros(len(seq), dtype=bool)
        for start in range(0, len(seq) - LOW_COMPLEXITY_WINDOW + 1):
            if _entropy_bits(seq[start : start + LOW_COMPLEXITY_WINDOW]) <= LOW_COMPLEXITY_BITS:
                covered[start : start + LOW_COMPLEXITY_WINDOW] = True
        flagged += int(covered.sum())
        total += len(seq)
    return flagged / total if total else float("nan")


def homopolymer_fraction(sequences: Sequence[str], run: int = 5) -> float:
    """Fraction of residues in runs of at least `run` identical residues (e.g. QQQQQ), a common failure mode."""
    flagged = total = 0
    for seq in sequences:
        total += len(seq)
        start = 0
        for i in range(1, len(seq) + 1):
            if i == len(seq) or seq[i] != seq[start]:
                if i - start >= run:
                    flagged += i - start
                start = i
    return flagged / total if total else float("nan")


def shuffled(sequences: Sequence[str], seed: int = 0) -> list[str]:
    """Each sequence with its residues permuted: same composition and length, no family signal left."""
    rng = random.Random(seed)
    return ["".join(rng.sample(s, len(s))) for s in sequences]


def unigram_perplexity(sequences: Sequence[str]) -> float:
    """exp of the entropy of the set's own residue distribution (all residue letters): what a model that knows
    only residue frequencies scores on this very set. About 18 for natural proteins."""
    counts = np.array(list(Counter(c for s in sequences for c in s).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(np.exp(-np.sum(p * np.log(p))))


def distribution(values: Sequence[float]) -> dict[str, float]:
    """Five-number summary and mean of a list of values."""
    array = np.asarray(values, dtype=np.float64)
    q = np.quantile(array, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {"min": q[0], "q1": q[1], "median": q[2], "q3": q[3], "max": q[4], "mean": float(array.mean())}
