"""Atomic output: write beside the target, then rename, so a crash never leaves half a file or folder behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside `path`; when the block succeeds it is renamed onto `path`, else removed."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """A fresh staging folder beside `target`; when the block succeeds it replaces `target` in one rename."""
    target = Path(target).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path).expanduser()
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


def atomic_save_figure(figure: Any, path: str | Path, **savefig_options: Any) -> Path:
    """Write a matplotlib figure as PNG, atomically."""
    path = Path(path).expanduser()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, format="png", dpi=100, **savefig_options)
    return path
