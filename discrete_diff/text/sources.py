"""Text documents from .txt files, JSONL records or Hugging Face dataset rows, read in bounded chunks.

Nothing here holds a whole corpus in memory: a text file yields its text chunk by chunk, and records are
streamed file by file (`read_documents`), so a 500 MB corpus is tokenized with the same memory as a 5 MB one.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserInputError
from . import dataset_files

CHUNK_BYTES = 1 << 20
CORPUS_SUFFIXES = {".txt", ".jsonl", *dataset_files.SUFFIXES}


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a corpus: a whole text file, one JSONL record, or one row of a dataset file."""

    name: str
    path: Path
    line: int | None = None
    """For JSONL: the 1-based line holding the record; for a dataset file: the 0-based row; None for a text file."""
    text_field: str = "text"
    label: Any = None
    """The document's label in a labelled corpus: its `label_field` value, its sub-folder or its CSV row (labels.py)."""

    def chunks(self) -> Iterator[str]:
        """The document's text in pieces of about CHUNK_BYTES, split at line ends (a longer line before a space)."""
        for _, chunks in read_documents([self]):
            yield from chunks


def read_documents(documents: Iterable[Document]) -> Iterator[tuple[Document, Iterable[str]]]:
    """Each document with its text chunks, in order; consecutive records of one file, in file order, are read in one
    pass over it (a labelled corpus, grouped by label, reads a file once per label).

    Consume each document's chunks before asking for the next document.
    """
    for group in _file_runs(documents):
        path = group[0].path
        if path.suffix in dataset_files.SUFFIXES:
            texts = dataset_files.read_texts(path, group[0].text_field, [d.line for d in group])
            yield from ((document, [text]) for document, text in zip(group, texts, strict=False))
        elif path.suffix == ".jsonl":
            yield from _read_jsonl_records(path, group)
        else:
            for document in group:
                yield document, _read_utf8_chunks(document.path)


def _file_runs(documents: Iterable[Document]) -> Iterator[list[Document]]:
    """Runs of consecutive documents of one file with increasing record numbers."""
    run: list[Document] = []
    for document in documents:
        if run and (document.path != run[-1].path or (document.line or 0) <= (run[-1].line or 0)):
            yield run
            run = []
        run.append(document)
    if run:
        yield run


def _read_utf8_chunks(path: Path) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    pending = ""
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as error:
                raise UserInputError(
                    f"{path}: not UTF-8 text (invalid byte at offset {offset + error.start})"
                ) from None
            offset += len(block)
            text = pending + text
            cut = text.rfind("\n") + 1
            if not cut and len(text) > CHUNK_BYTES:  # one long line: cut before its last space, else anywhere
                cut = text.rfind(" ") if text.rfind(" ") > 0 else len(text)
            pending = text[cut:]
            if cut:
                yield text[:cut]
        try:
            pending += decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UserInputError(f"{path}: not UTF-8 text (truncated character at the end of the file)") from None
    if pending:
        yield pending


def _read_jsonl_records(path: Path, documents: list[Document]) -> Iterator[tuple[Document, list[str]]]:
    wanted = iter(documents)
    document = next(wanted, None)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if document is None:
                return
            if number == document.line:
                yield document, [_parse_jsonl_line(path, number, raw, document.text_field)[0]]
                document = next(wanted, None)
    if document is not None:
        raise UserInputError(f"{path}:{document.line}: record vanished while reading")


def _parse_jsonl_line(
    path: Path, number: int, raw: bytes, field: str, label_field: str | None = None
) -> tuple[str, Any]:
    """(text, label) of one record; label is None when no `label_field` is asked for."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise UserInputError(f"{path}:{number}: not UTF-8 text (invalid byte at column {error.start + 1})") from None
    except json.JSONDecodeError as error:
        raise UserInputError(f"{path}:{number}: invalid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise UserInputError(f"{path}:{number}: invalid JSON (nested too deeply)") from None
    if not isinstance(record, dict) or not isinstance(record.get(field), str):
        raise UserInputError(f"{path}:{number}: record has no string field '{field}'")
    text = record[field]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # JSON may spell a lone surrogate (\ud800) that no text encoding holds
        raise UserInputError(
            f"{path}:{number}: field '{field}' holds a lone surrogate escape at character {error.start + 1}"
        ) from None
    if label_field is None:
        return text, None
    if label_field not in record:
        raise UserInputError(f"{path}:{number}: record has no label field '{label_field}'")
    return text, record[label_field]


def _jsonl_documents(path: Path, name: str, field: str, label_field: str | None) -> Iterator[Document]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                _, label = _parse_jsonl_line(path, number, raw, field, label_field)
                yield Document(name=f"{name}:{number}", path=path, line=number, text_field=field, label=label)


def find_documents(path: str | Path, text_field: str = "text", label_field: str | None = None) -> list[Document]:
    """The documents of a corpus: a .txt, .jsonl, .parquet or .arrow file, a dataset saved with
    `datasets.save_to_disk`, or a directory of such files (sorted by path).

    JSONL records and dataset rows carry the value of `label_field` when one is given.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise UserInputError(f"{root}: corpus not found")
    if root.is_dir() and dataset_files.is_saved_dataset(root):
        files = dataset_files.saved_dataset_files(root)
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in CORPUS_SUFFIXES)
        if not files:
            raise UserInputError(f"{root}: directory holds no {', '.join(sorted(CORPUS_SUFFIXES))} files")
    else:
        files = [root]
    documents: list[Document] = []
    for file in files:
        name = str(file.relative_to(root)) if root.is_dir() else file.name
        if file.suffix in dataset_files.SUFFIXES:
            rows = dataset_files.labelled_rows(file, text_field, label_field)
            documents.extend(
                Document(name=f"{name}:{row}", path=file, line=row, text_field=text_field, label=label)
                for row, label in enumerate(rows)
            )
        elif file.suffix == ".jsonl":  # named by file name alone, as before, so existing splits stay as they were
            documents.extend(_jsonl_documents(file, file.name, text_field, label_field))
        else:
            documents.append(Document(name=name, path=file))
    return documents


def split_documents(documents: list[Document], val_fraction: float) -> tuple[list[Document], list[Document]]:
    """Whole documents go to validation, chosen by a hash of their names: deterministic and order-free."""
    if len(documents) < 2:
        return documents, []
    ranked = sorted(documents, key=lambda d: hashlib.sha256(d.name.encode()).hexdigest())
    count = min(len(documents) - 1, max(1, round(val_fraction * len(documents))))
    held_out = {d.name for d in ranked[:count]}
    return [d for d in documents if d.name not in held_out], [d for d in documents if d.name in held_out]


def corpus_fingerprint(documents: list[Document]) -> str:
    """sha256 over every file's name and bytes: the cache key's content half."""
    digest = hashlib.sha256()
    for path in sorted({d.path for d in documents}):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            while block := handle.read(CHUNK_BYTES):
                digest.update(block)
    digest.update(json.dumps(sorted({d.text_field for d in documents})).encode())
    return digest.hexdigest()
