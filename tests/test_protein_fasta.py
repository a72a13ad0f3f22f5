"""FASTA edge cases, each with its expected outcome."""

import gzip

import pytest
from Bio import SeqIO

from discrete_diff.errors import UserInputError
from discrete_diff.protein.fasta import FastaPolicy, ProteinRecord, read_fasta, write_fasta


def write(tmp_path, text, name="x.fasta", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def sequences(path, **policy):
    records, report = read_fasta(path, FastaPolicy(**policy))
    return [r.sequence for r in records], report


def test_lowercase_is_upper_cased_and_trailing_stop_stripped(tmp_path):
    seqs, _ = sequences(write(tmp_path, ">a\nmkvLa*\n"))
    assert seqs == ["MKVLA"]


def test_gaps_are_removed(tmp_path):
    seqs, _ = sequences(write(tmp_path, ">a\nMK--V.L\n"))
    assert seqs == ["MKVL"]


def test_windows_line_endings_and_blank_lines_between_records(tmp_path):
    path = write(tmp_path, b">a desc\r\nMKV\r\nLLA\r\n\r\n\r\n>b\r\nGG\r\n", mode="wb")
    records, _ = read_fasta(path)
    assert [(r.id, r.sequence) for r in records] == [("a", "MKVLLA"), ("b", "GG")]
    assert records[0].description == "a desc"


def test_header_with_no_sequence_is_dropped_and_reported(tmp_path):
    seqs, report = sequences(write(tmp_path, ">a\n>b\nMKV\n"))
    assert seqs == ["MKV"]
    assert report.dropped == {"empty records": ["a"]}
    assert "dropped 1 empty records (first: a)" in report.summary()


def test_digit_inside_a_sequence_names_file_record_position_and_character(tmp_path):
    path = write(tmp_path, ">ok\nMKV\n>bad\nMKV3LA\n")
    with pytest.raises(UserInputError, match=r"x\.fasta: record 'bad' has the invalid character '3' at position 4"):
        read_fasta(path)


def test_skip_option_drops_invalid_records_and_counts_them(tmp_path):
    seqs, report = sequences(write(tmp_path, ">ok\nMKV\n>bad\nMK9\n>bad2\nM#\n"), invalid="skip")
    assert seqs == ["MKV"]
    assert report.dropped == {"records with invalid characters": ["bad", "bad2"]}


def test_spaces_inside_a_sequence_are_dropped(tmp_path):
    # Biopython's parser joins lines without spaces (files that group residues in blocks of ten).
    seqs, _ = sequences(write(tmp_path, ">a\nMKVLA GGSTE W\n"))
    assert seqs == ["MKVLAGGSTEW"]


def test_non_fasta_file_is_refused(tmp_path):
    with pytest.raises(UserInputError, match=r"not a FASTA file \(line 1 starts with 'hello world'"):
        read_fasta(write(tmp_path, "hello world\n>a\nMK\n", name="notes.txt"))


def test_binary_file_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="not a readable text FASTA file"):
        read_fasta(write(tmp_path, b"\xff\xfe\x00\x81binary", mode="wb"))


def test_empty_file_has_no_records(tmp_path):
    with pytest.raises(UserInputError, match="x.fasta: holds no FASTA records"):
        read_fasta(write(tmp_path, ""))


def test_gzipped_file_is_read_whatever_its_name(tmp_path):
    path = tmp_path / "x.faa.gz"
    path.write_bytes(gzip.compress(b">a\nMKV*\n>b\nlla\n"))
    seqs, _ = sequences(path)
    assert seqs == ["MKV", "LLA"]


def test_duplicate_ids_are_an_error_unless_allowed(tmp_path):
    path = write(tmp_path, ">a\nMK\n>b\nLL\n>a\nGG\n")
    with pytest.raises(UserInputError, match="record 3 has the id 'a' of record 1"):
        read_fasta(path)
    seqs, _ = sequences(path, duplicates="keep")
    assert seqs == ["MK", "LL", "GG"]


@pytest.mark.parametrize(
    ("policy", "expected", "replaced"),
    [("keep", ["MXBZUO", "MKV"], 0), ("replace", ["MXDECK", "MKV"], 4), ("drop", ["MKV"], 0)],
)
def test_ambiguous_residues_follow_the_policy(tmp_path, policy, expected, replaced):
    seqs, report = sequences(write(tmp_path, ">a\nMXBZUO\n>b\nMKV\n"), ambiguous=policy)
    assert seqs == expected
    assert report.replaced_residues == replaced


def test_length_filters(tmp_path):
    seqs, report = sequences(write(tmp_path, ">a\nMK\n>b\nMKVL\n>c\nMKVLAGG\n"), min_length=3, max_length=5)
    assert seqs == ["MKVL"]
    assert report.dropped == {"records shorter than 3": ["a"], "records longer than 5": ["c"]}


def test_all_records_dropped_says_why(tmp_path):
    with pytest.raises(UserInputError, match="no usable records: .*dropped 1 records shorter than 5"):
        read_fasta(write(tmp_path, ">a\nMK\n"), FastaPolicy(min_length=5))


def test_bad_policy_value_is_a_user_error():
    with pytest.raises(UserInputError, match="ambiguous='maybe'"):
        FastaPolicy(ambiguous="maybe")


def test_write_round_trips_through_biopython(tmp_path):
    records = [ProteinRecord("s1", "s1 length=70 seed=0", "M" * 70), ProteinRecord("s2", "s2", "KV")]
    path = write_fasta(tmp_path / "out.fasta", records)
    parsed = list(SeqIO.parse(path, "fasta"))
    assert [(r.id, r.description, str(r.seq)) for r in parsed] == [(r.id, r.description, r.sequence) for r in records]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
