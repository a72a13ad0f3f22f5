"""Text documents from a .txt file, a directory of them, or JSONL records, read in bounded chunks.

Nothing here holds a whole corpus in memory: each document yields its text chunk by chunk, so a
500 MB corpus is tokenized with the same memory as a 5 MB one.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserInputError

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Document:
    """One document of a corpus: a whole file, or one JSONL record."""

    name: str
    path: Path
    line: int | None = None
    """For JSONL: the 1-based line holding the record; None for a plain text file."""
    text_field: str = "text"

    def chunks(self) -> Iterator[str]:
        """The document's text in pieces of about CHUNK_BYTES, split at line ends."""
        if self.line is None:
            yield from _read_utf8_chunks(self.path)
        else:
            yield _jsonl_record_text(self.path, self.line, self.text_field)


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
            pending = text[cut:]
            if cut:
                yield text[:cut]
        try:
            pending += decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UserInputError(f"{path}: not UTF-8 text (truncated character at the end of the file)") from None
    if pending:
        yield pending


def _jsonl_record_text(path: Path, line_number: int, field: str) -> str:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == line_number:
                return _parse_jsonl_line(path, number, raw, field)
    raise UserInputError(f"{path}:{line_number}: record vanished while reading")


def _parse_jsonl_line(path: Path, number: int, raw: bytes, field: str) -> str:
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise UserInputError(f"{path}:{number}: not UTF-8 text (invalid byte at column {error.start + 1})") from None
    except json.JSONDecodeError as error:
        raise UserInputError(f"{path}:{number}: invalid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict) or not isinstance(record.get(field), str):
        raise UserInputError(f"{path}:{number}: record has no string field '{field}'")
    return record[field]


def _jsonl_documents(path: Path, field: str) -> Iterator[Document]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                _parse_jsonl_line(path, number, raw, field)
                yield Document(name=f"{path.name}:{number}", path=path, line=number, text_field=field)


def find_documents(path: str | Path, text_field: str = "text") -> list[Document]:
    """The documents of a corpus: a .txt file, a .jsonl file, or a directory of .txt/.jsonl files (sorted)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserInputError(f"{root}: corpus not found")
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".txt", ".jsonl"})
        if not files:
            raise UserInputError(f"{root}: directory holds no .txt or .jsonl files")
    else:
        files = [root]
    documents: list[Document] = []
    for file in files:
        if file.suffix == ".jsonl":
            documents.extend(_jsonl_documents(file, text_field))
        else:
            documents.append(Document(name=str(file.relative_to(root)) if root.is_dir() else file.name, path=file))
    return documents


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
