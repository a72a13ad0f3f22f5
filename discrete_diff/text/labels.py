"""Labels of text documents: a JSONL field or dataset column (read with the documents), the sub-folder a file sits
in, or a small CSV of file -> label; and a digest of who has which label, for the token cache's key."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from pathlib import Path

from ..errors import UserInputError
from .sources import Document

CSV_HEADER = ("file", "label")
"""An optional first row of a label CSV."""


def label_source(label_field: str | None, label_folders: bool, label_csv: str | None) -> str | None:
    """Which of the three label sources is asked for (None: an unlabelled corpus); more than one is an error."""
    chosen = [name for name, on in (("label_field", label_field), ("label_folders", label_folders),
                                    ("label_csv", label_csv)) if on]  # fmt: skip
    if len(chosen) > 1:
        raise UserInputError(f"data: choose one label source, not {' and '.join(f'data.{c}' for c in chosen)}")
    return chosen[0] if chosen else None


def file_key(document: Document, root: Path) -> str:
    """How a label CSV or a sub-folder names a document's file: its path inside the corpus folder, with `/`."""
    return document.path.relative_to(root).as_posix() if root.is_dir() else document.path.name


def label_by_folder(documents: list[Document], root: Path) -> list[Document]:
    """Each document labelled by the sub-folder of the corpus folder its file sits in (its first path component)."""
    if not root.is_dir():
        raise UserInputError(f"data.label_folders: {root} is a file; labels from sub-folders need a corpus folder")
    labelled = []
    for document in documents:
        parts = document.path.relative_to(root).parts
        if len(parts) < 2:
            raise UserInputError(
                f"data.label_folders: {document.path} sits at the top of {root}, in no sub-folder to name its label"
            )
        labelled.append(dataclasses.replace(document, label=parts[0]))
    return labelled


def resolve_label_csv(path: str, root: Path) -> Path:
    """A relative CSV path is looked up in the corpus folder first (where a built-in corpus keeps its labels)."""
    given = Path(path).expanduser()
    beside = (root if root.is_dir() else root.parent) / given
    return beside if not given.is_absolute() and beside.is_file() else given


def read_label_csv(path: Path) -> dict[str, str]:
    """file -> label from a two-column CSV (an optional `file,label` header); a bad row names its line."""
    if not path.is_file():
        raise UserInputError(f"data.label_csv {path}: file not found")
    labels: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not any(cell.strip() for cell in row) or (number == 1 and tuple(row) == CSV_HEADER):
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise UserInputError(f"{path}:{number}: expected two columns, file and label, got {row!r}")
                file, label = row[0].strip(), row[1].strip()
                if file in labels:
                    raise UserInputError(f"{path}:{number}: {file!r} is labelled twice")
                labels[file] = label
    except UnicodeDecodeError:
        raise UserInputError(f"{path}: not UTF-8 text") from None
    except csv.Error as error:
        raise UserInputError(f"{path}: not a readable CSV file ({error})") from None
    return labels


def label_by_csv(documents: list[Document], root: Path, path: Path) -> list[Document]:
    """Each document labelled by its file's row of the CSV; every file needs one, and every row a file."""
    labels = read_label_csv(path)
    files = {file_key(document, root) for document in documents}
    unknown = sorted(set(labels) - files)
    if unknown:
        raise UserInputError(f"{path}: names {unknown[0]!r}, which is not a file of the corpus {root}")
    missing = sorted(files - set(labels))
    if missing:
        raise UserInputError(f"{path}: gives no label for {missing[0]!r} (every corpus file needs one)")
    return [dataclasses.replace(document, label=labels[file_key(document, root)]) for document in documents]


def check_labelled(documents: list[Document]) -> None:
    """Every document of a labelled corpus carries a label (a JSONL or dataset null is an error)."""
    for document in documents:
        if document.label is None:
            where = document.path if document.line is None else f"{document.path}:{document.line}"
            raise UserInputError(f"{where}: the label is null (every document of a labelled corpus needs one)")


def labels_digest(documents: list[Document]) -> str:
    """A hash of each document's name and label: part of the token cache's key for a labelled corpus."""
    pairs = [(document.name, str(document.label)) for document in documents]
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()
