"""Rows of Hugging Face dataset files: Parquet, Arrow (IPC stream or file), and `datasets.save_to_disk` folders.

Read with pyarrow (installed by the `datasets` extra) one record batch at a time and only the columns asked for,
never a whole column, so a dataset larger than memory streams. Rows are numbered from 0 within their file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import UserInputError

SUFFIXES = {".parquet", ".arrow"}
BATCH_ROWS = 64
"""Parquet rows per record batch: a batch of whole books is still tens of MB. (An Arrow file's batches are as its
writer made them; `datasets` writes 1,000 rows each.)"""
EXTRA_HINT = "pip install 'discrete-diff[datasets]'"


def _pyarrow() -> ModuleType:
    try:
        import pyarrow
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError:
        raise UserInputError(
            f"reading Parquet, Arrow or Hugging Face datasets needs the 'datasets' extra: {EXTRA_HINT}"
        ) from None
    return pyarrow


def is_saved_dataset(folder: Path) -> bool:
    """A folder written by `Dataset.save_to_disk` (state.json) or `DatasetDict.save_to_disk` (dataset_dict.json)."""
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def saved_dataset_files(folder: Path) -> list[Path]:
    """The Arrow files of a `save_to_disk` folder, in the dataset's row order."""
    if (folder / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in folder.iterdir() if (p / "state.json").is_file())
        example = folder / splits[0] if splits else folder / "train"
        raise UserInputError(
            f"{folder}: a dataset with several splits ({', '.join(splits) or 'none saved'}): "
            f"point the corpus at one split's folder, e.g. {example}"
        )
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        files = [folder / entry["filename"] for entry in state["_data_files"]]
    except (ValueError, KeyError, TypeError) as error:
        raise UserInputError(f"{folder}/state.json: not a datasets save_to_disk state ({error})") from None
    for file in files:
        if not file.is_file():
            raise UserInputError(f"{folder}: state.json lists {file.name}, which is missing")
    return files


def labelled_rows(path: Path, text_field: str, label_field: str | None) -> Iterator[Any]:
    """One value per row: the row's `label_field` value, or None when no label is asked for."""
    if label_field is None:
        yield from [None] * _row_count(path, text_field)
        return
    _check_columns(path, text_field, label_field)
    for batch in _batches(path, [label_field]):
        yield from batch.column(0).to_pylist()


def read_texts(path: Path, field: str, rows: list[int]) -> Iterator[str]:
    """The `field` text of each of `rows` (increasing row numbers), streaming through the file once."""
    wanted = iter(rows)
    row = next(wanted, None)
    first = 0  # row number of the batch's first row
    for batch in _batches(path, [field]):
        if row is None:
            return
        if row >= first + batch.num_rows:
            first += batch.num_rows
            continue
        texts = batch.column(0).to_pylist()
        while row is not None and row < first + len(texts):
            text = texts[row - first]
            if text is None:
                raise UserInputError(f"{path}: row {row} has no text (field '{field}' is null)")
            yield text
            row = next(wanted, None)
        first += batch.num_rows
    if row is not None:
        raise UserInputError(f"{path}: row {row} vanished while reading")


def _row_count(path: Path, text_field: str) -> int:
    schema, rows = _open(path, count=True)
    _check_field(path, schema, text_field, text=True)
    return rows


def _check_columns(path: Path, text_field: str, label_field: str) -> None:
    schema, _ = _open(path, count=False)
    _check_field(path, schema, text_field, text=True)
    _check_field(path, schema, label_field, text=False)


def _check_field(path: Path, schema: Any, field: str, text: bool) -> None:
    pa = _pyarrow()
    if field not in schema.names:
        kind = "text" if text else "label"
        raise UserInputError(f"{path}: no {kind} column '{field}' (columns: {', '.join(schema.names)})")
    kind = schema.field(field).type
    if text and not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        raise UserInputError(f"{path}: column '{field}' holds {kind}, not text")


def _open(path: Path, count: bool) -> tuple[Any, int]:
    """(schema, number of rows, or 0 unless `count`); an Arrow stream has to be read through to count its rows."""
    pa = _pyarrow()
    try:
        if path.suffix == ".parquet":
            metadata = pa.parquet.ParquetFile(path).metadata
            return metadata.schema.to_arrow_schema(), metadata.num_rows
        with pa.OSFile(str(path)) as source:
            reader = _arrow_reader(pa, source, path)
            rows = sum(batch.num_rows for batch in _arrow_batches(reader)) if count else 0
            return reader.schema, rows
    except (pa.ArrowException, OSError) as error:
        raise UserInputError(f"{path}: not a readable {path.suffix[1:]} file ({error})") from None


def _batches(path: Path, columns: list[str]) -> Iterator[Any]:
    """Record batches of only `columns`, one at a time."""
    pa = _pyarrow()
    try:
        if path.suffix == ".parquet":
            # A buffered stream reads a column chunk page by page instead of a whole row group at once.
            parquet = pa.parquet.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
            yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns)
            return
        with pa.OSFile(str(path)) as source:
            for batch in _arrow_batches(_arrow_reader(pa, source, path)):
                yield batch.select(columns)
    except (pa.ArrowException, OSError) as error:
        raise UserInputError(f"{path}: not a readable {path.suffix[1:]} file ({error})") from None


def _arrow_reader(pa: ModuleType, source: Any, path: Path) -> Any:
    # `datasets` writes the IPC stream format; Feather v2 / IPC files begin with the magic bytes ARROW1.
    with open(path, "rb") as handle:
        is_file_format = handle.read(6) == b"ARROW1"
    return pa.ipc.open_file(source) if is_file_format else pa.ipc.open_stream(source)


def _arrow_batches(reader: Any) -> Iterator[Any]:
    if hasattr(reader, "num_record_batches"):  # IPC file format: random access by index
        return (reader.get_batch(i) for i in range(reader.num_record_batches))
    return iter(reader)
