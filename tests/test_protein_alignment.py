"""Family alignments: aligned FASTA read through Biopython with one-line errors, or built by FAMSA."""

import gzip

import pytest
from protein_family import make_gapped_family

from discrete_diff.errors import UserInputError
from discrete_diff.protein.alignment import align_sequences, read_alignment
from discrete_diff.protein.hmm import build_hmm, hit_flags
from discrete_diff.protein.metrics import shuffled

FAMILY = make_gapped_family(50, length=60, seed=3)


def test_famsa_alignment_keeps_every_sequence_and_its_hmm_finds_the_family():
    assert len({len(s) for s in FAMILY}) > 1  # members differ in length: a real alignment is needed
    rows = align_sequences(FAMILY[:40])
    assert list(rows) == [str(i) for i in range(40)] and len({len(r) for r in rows.values()}) == 1
    assert [rows[str(i)].replace("-", "") for i in range(40)] == FAMILY[:40]
    hmm = build_hmm(rows)
    assert all(hit_flags(hmm, FAMILY[40:])) and not any(hit_flags(hmm, shuffled(FAMILY[40:], seed=1)))


def test_aligned_fasta_is_read_with_dots_as_gaps_and_gzipped(tmp_path):
    path = tmp_path / "family.afa.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(">a first\nAC-D\nEF\n>b\nac.dEF\n>c\nACWD-F\n")
    assert read_alignment(path) == {"a": "AC-DEF", "b": "AC-DEF", "c": "ACWD-F"}
    assert read_alignment(path, keep={"a", "c"}) == {"a": "AC-DEF", "c": "ACWD-F"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (">a\nACD\n>b\nAC-D\n>c\nACD\n", r"not an alignment: record 2 \('b'\) has 4 columns, record 1 \('a'\) has 3"),
        (">a\nACD\n>b\nA1D\n", r"record 'b' has '1' at column 2, not a residue or gap"),
        ("ACD\n>a\nACD\n", "not an aligned FASTA file"),
        ("", "not an aligned FASTA file"),
        (">a\nACD\n", r"need at least two aligned rows \(got 1\)"),
    ],
)
def test_bad_alignments_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.afa"
    path.write_text(text)
    with pytest.raises(UserInputError, match=message) as error:
        read_alignment(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_fewer_than_two_sequences_cannot_be_aligned():
    with pytest.raises(UserInputError, match=r"need at least two sequences to align a family \(got 1\)"):
        align_sequences(FAMILY[:1])
