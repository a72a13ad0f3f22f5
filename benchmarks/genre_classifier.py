"""A small genre classifier for the guidance benchmark: one character trigram model per genre (Dirichlet-smoothed,
each order backing off to the one below, uniform at the bottom); a text gets the genre under whose model it is most
likely. Counts are kept as sorted n-gram codes, so fitting 5 MB of text and scoring thousands of samples take
seconds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class CharNgramClassifier:
    def __init__(self, order: int = 3, strength: float = 20.0) -> None:
        """order: characters per n-gram (the history is order - 1); strength: the Dirichlet prior's weight."""
        self.order, self.strength = order, strength
        self.alphabet: dict[str, int] = {}
        self.counts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def _codes(self, text: str) -> np.ndarray:
        other = len(self.alphabet)
        return np.array([self.alphabet.get(c, other) for c in text], dtype=np.int64)

    def _grams(self, codes: np.ndarray, n: int) -> np.ndarray:
        """(len - n + 1,) int64 code of each n-gram: base-(alphabet + 1) digits."""
        base = len(self.alphabet) + 1
        grams = np.zeros(max(len(codes) - n + 1, 0), dtype=np.int64)
        for offset in range(n):
            grams = grams * base + codes[offset : offset + len(grams)]
        return grams

    def fit(self, texts: dict[str, Sequence[str]]) -> CharNgramClassifier:
        """texts: genre -> its training texts."""
        characters = sorted({c for pieces in texts.values() for text in pieces for c in text})
        self.alphabet = {c: i for i, c in enumerate(characters)}
        for genre, pieces in texts.items():
            per_order = []
            for n in range(1, self.order + 1):
                grams = np.concatenate([self._grams(self._codes(text), n) for text in pieces])
                per_order.append(np.unique(grams, return_counts=True))  # (sorted codes, counts)
            self.counts[genre] = per_order
        return self

    @staticmethod
    def _lookup(table: tuple[np.ndarray, np.ndarray], grams: np.ndarray) -> np.ndarray:
        codes, counts = table
        where = np.searchsorted(codes, grams).clip(max=len(codes) - 1)
        return np.where(codes[where] == grams, counts[where], 0).astype(np.float64)

    def log_likelihood(self, text: str, genre: str) -> float:
        """log p(text | genre), each character given up to order - 1 characters before it (nats)."""
        codes = self._codes(text)
        if len(codes) == 0:
            return 0.0
        tables = self.counts[genre]
        size = len(self.alphabet) + 1
        probs = np.full(len(codes), 1.0 / size)  # (T,) order 0: uniform
        for n in range(1, self.order + 1):
            grams = np.full(len(codes), -1, dtype=np.int64)  # positions without n - 1 characters before keep lower
            grams[n - 1 :] = self._grams(codes, n)
            if n == 1:
                context = np.full(len(codes), float(tables[0][1].sum()))
            else:
                histories = np.full(len(codes), -1, dtype=np.int64)
                histories[n - 1 :] = self._grams(codes[:-1], n - 1)
                context = self._lookup(tables[n - 2], histories)
            joint = self._lookup(tables[n - 1], grams)
            smoothed = (joint + self.strength * probs) / (context + self.strength)
            probs = np.where(grams >= 0, smoothed, probs)
        return float(np.log(probs).sum())

    def predict(self, text: str) -> str:
        return max(self.counts, key=lambda genre: self.log_likelihood(text, genre))


def chunks(text: str, size: int, limit: int | None = None) -> list[str]:
    """Consecutive pieces of `size` characters (the last partial one dropped), at most `limit` spread evenly."""
    pieces = [text[i : i + size] for i in range(0, len(text) - size + 1, size)]
    if limit is not None and len(pieces) > limit:
        step = len(pieces) / limit
        pieces = [pieces[int(i * step)] for i in range(limit)]
    return pieces


def unigram_entropy(text: str) -> float:
    """Bits per character of the text's own character distribution (repetitive text scores low)."""
    if not text:
        return 0.0
    _, counts = np.unique(list(text), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def accuracy(classifier: CharNgramClassifier, texts: Sequence[str], genre: str) -> float:
    return sum(classifier.predict(text) == genre for text in texts) / len(texts) if texts else math.nan
