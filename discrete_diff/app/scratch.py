"""Server-side files for the page (trajectory pictures, FASTA downloads): one fresh folder per request, named by the
server, never by what the user typed; folders older than `keep_seconds` are removed as new ones are made."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path


class Scratch:
    def __init__(self, keep_seconds: float = 600.0) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="discrete-diff-serve-")
        self.root = Path(self._directory.name)
        self.keep_seconds = keep_seconds

    def folder(self) -> Path:
        cutoff = time.time() - self.keep_seconds
        for old in self.root.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except FileNotFoundError:  # another request pruned it first
                continue
        path = self.root / uuid.uuid4().hex
        path.mkdir()
        return path
