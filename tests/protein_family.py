"""A synthetic protein family: point mutants of one ancestor, so its alignment is the sequences themselves."""

from __future__ import annotations

import random
from pathlib import Path

CANONICAL = "ACDEFGHIKLMNPQRSTVWY"


def make_family(count: int, length: int = 60, mutation_rate: float = 0.15, seed: int = 0) -> list[str]:
    """`count` members of one family: each position of the ancestor mutated with probability `mutation_rate`."""
    rng = random.Random(seed)
    ancestor = "".join(rng.choice(CANONICAL) for _ in range(length))
    return [
        "".join(rng.choice(CANONICAL) if rng.random() < mutation_rate else c for c in ancestor) for _ in range(count)
    ]


def make_gapped_family(count: int, length: int = 60, indels: int = 3, seed: int = 0) -> list[str]:
    """Point mutants (15%) that also lose or gain `indels` residues each: members of different lengths, so their
    FASTA file is not an alignment and one has to be built."""
    rng = random.Random(seed)
    members = []
    for member in make_family(count, length, seed=seed):
        residues = list(member)
        for _ in range(indels):
            at = rng.randrange(len(residues))
            if rng.random() < 0.5:
                del residues[at]
            else:
                residues.insert(at, rng.choice(CANONICAL))
        members.append("".join(residues))
    return members


def fasta_text(sequences: list[str], prefix: str = "p") -> str:
    return "".join(f">{prefix}{i} member {i}\n{s}\n" for i, s in enumerate(sequences))


def stand_in_families(data_dir: Path) -> None:
    """A built-in `families` folder the fetch takes as it is: hemopexin and adeno_fiber (point mutants, with their
    alignments) and a background proteome (60% mutated, no alignment), 30 members each, labelled family=NAME."""
    families = data_dir / "families"
    (families / "alignments").mkdir(parents=True)
    lines = []
    for name, seed, length in (("hemopexin", 8, 30), ("adeno_fiber", 9, 40), ("proteome", 10, 50)):
        members = make_family(30, length=length, mutation_rate=0.6 if name == "proteome" else 0.15, seed=seed)
        lines += [f">{name}{i} family={name}\n{s}\n" for i, s in enumerate(members)]
        if name != "proteome":
            (families / "alignments" / f"{name}.afa").write_text(
                "".join(f">{name}{i}\n{s}\n" for i, s in enumerate(members))
            )
    (families / "sequences.faa").write_text("".join(lines))
