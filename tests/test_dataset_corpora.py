"""Corpora from the `datasets` ecosystem: Parquet, Arrow and save_to_disk folders, made here, read offline."""

import sys

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from text_data import ready_text_data

from discrete_diff.errors import UserInputError
from discrete_diff.text.hub import fetch_hub_dataset
from discrete_diff.text.sources import find_documents, split_documents
from discrete_diff.text.tokenizers import CharacterTokenizer

TEXTS = [f"Record {i}: {'the cat sat on the mat. ' * (1 + i % 3)}" for i in range(30)]
LABELS = [i % 4 for i in range(30)]


def _documents_text(documents):
    return ["".join(d.chunks()) for d in documents]


def test_parquet_rows_are_documents_with_labels_streamed_batch_by_batch(tmp_path):
    path = tmp_path / "corpus.parquet"
    # Row groups of 7 rows: record batches of at most 7, so rows are found across batch boundaries.
    pq.write_table(pa.table({"body": TEXTS, "topic": LABELS, "other": list(range(30))}), path, row_group_size=7)
    documents = find_documents(path, text_field="body", label_field="topic")
    assert [d.name for d in documents[:2]] == ["corpus.parquet:0", "corpus.parquet:1"]
    assert [d.label for d in documents] == LABELS
    assert _documents_text(documents) == TEXTS
    train, validation = split_documents(documents, 0.2)
    assert len(validation) == 6 and _documents_text(validation) == [TEXTS[d.line] for d in validation]


def test_save_to_disk_folder_trains_a_data_module_like_text_files(tmp_path):
    folder = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": TEXTS, "label": LABELS}).save_to_disk(str(folder))
    data = ready_text_data(str(folder), tokenizer=CharacterTokenizer(), max_length=16, label_field="label")
    documents = find_documents(folder, label_field="label")
    assert [d.label for d in documents] == LABELS and data.cache.parent.parent == folder
    train, validation = split_documents(documents, 0.1)
    expected = sum(len(t) for t in _documents_text(validation))
    assert data.splits["validation"].characters == expected
    assert data.splits["validation"].tokens == expected + len(validation)  # one [EOS] per record
    first = _documents_text(sorted(validation, key=lambda d: str(d.label)))[0]  # written grouped by label
    start = data.splits["validation"].start
    assert data.tokenizer.decode(np.asarray(data.tokens[start : start + len(first)]).tolist()) == first


def test_arrow_stream_and_file_formats_read_alike(tmp_path):
    table = pa.table({"text": TEXTS})
    stream, file = tmp_path / "stream.arrow", tmp_path / "file.arrow"
    with pa.OSFile(str(stream), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=8)
    with pa.OSFile(str(file), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=8)
    assert _documents_text(find_documents(stream)) == TEXTS == _documents_text(find_documents(file))
    # A folder of dataset files: every file's rows, named by their path inside it.
    assert [d.name for d in find_documents(tmp_path)][::30] == ["file.arrow:0", "stream.arrow:0"]


@pytest.mark.parametrize(
    "table, options, message",
    [
        ({"body": ["a"]}, {}, r"no text column 'text' \(columns: body\)"),
        ({"text": [1, 2]}, {}, "column 'text' holds int64, not text"),
        ({"text": ["a"]}, {"label_field": "y"}, "no label column 'y'"),
    ],
)
def test_bad_dataset_columns_are_one_line_errors(tmp_path, table, options, message):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(table), path)
    with pytest.raises(UserInputError, match=message):
        find_documents(path, **options)


def test_a_null_text_names_its_row_and_a_broken_file_is_named(tmp_path):
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"text": ["fine", None, "fine"]}), path)
    with pytest.raises(UserInputError, match=r"nulls.parquet: row 1 has no text \(field 'text' is null\)"):
        _documents_text(find_documents(path))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(UserInputError, match="broken.parquet: not a readable parquet file"):
        find_documents(broken)


def test_a_dataset_dict_folder_asks_for_one_split(tmp_path):
    split = datasets.Dataset.from_dict({"text": TEXTS})
    datasets.DatasetDict({"train": split, "test": split}).save_to_disk(str(tmp_path / "dict"))
    with pytest.raises(UserInputError, match=r"several splits \(test, train\): point the corpus at one"):
        find_documents(tmp_path / "dict")
    assert _documents_text(find_documents(tmp_path / "dict" / "train")) == TEXTS


def test_without_pyarrow_the_error_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"text": TEXTS}), path)
    for module in ("pyarrow", "pyarrow.ipc", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, module, None)  # what `import pyarrow` meets when it is not installed
    with pytest.raises(UserInputError, match=r"needs the 'datasets' extra: pip install 'discrete-diff\[datasets\]'"):
        find_documents(path)


def test_a_hub_name_that_cannot_be_fetched_is_one_line(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # this machine has no hub; never wait for one
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserInputError, match=r"hf:nobody/no-such-set:cfg@test: cannot load it from the Hugging Face"):
        fetch_hub_dataset("hf:nobody/no-such-set:cfg@test", tmp_path)
    with pytest.raises(UserInputError, match="write a hub dataset as hf:NAME"):
        fetch_hub_dataset("hf:two words", tmp_path)
    assert not any(tmp_path.rglob("*.arrow"))
