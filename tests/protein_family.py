"""A synthetic protein family: point mutants of one ancestor, so its alignment is the sequences themselves."""

from __future__ import annotations

import random

CANONICAL = "ACDEFGHIKLMNPQRSTVWY"


def make_family(count: int, length: int = 60, mutation_rate: float = 0.15, seed: int = 0) -> list[str]:
    """`count` members of one family: each position of the ancestor mutated with probability `mutation_rate`."""
    rng = random.Random(seed)
    ancestor = "".join(rng.choice(CANONICAL) for _ in range(length))
    return [
        "".join(rng.choice(CANONICAL) if rng.random() < mutation_rate else c for c in ancestor) for _ in range(count)
    ]


def fasta_text(sequences: list[str], prefix: str = "p") -> str:
    return "".join(f">{prefix}{i} member {i}\n{s}\n" for i, s in enumerate(sequences))
