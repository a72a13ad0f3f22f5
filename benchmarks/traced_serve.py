"""`discrete-diff serve` under tracemalloc, for serve_load.py --trace-memory: where the server's memory grows.

Run as `python benchmarks/traced_serve.py REPORT_DIR serve --checkpoint ...`. The first SIGUSR1 starts tracing
(after the warm-up, so that start-up and the imports, slow under tracing, are not traced); each later one writes
REPORT_DIR/growth-N.json: the allocation sites (16-frame tracebacks) whose live memory grew most since then.
Everything is computed in the server's own process, so no snapshot is written to disk and read back.
"""

from __future__ import annotations

import json
import signal
import sys
import tracemalloc
from pathlib import Path

from discrete_diff.atomic_files import atomic_write_text
from discrete_diff.cli import main

FRAMES = 16
"""Frames per traced allocation: deep enough to reach the library code behind a stdlib call."""
TOP = 15
"""Allocation sites reported per reading."""
OWN_CODE = ("discrete_diff", "gradio", "fastapi", "starlette", "uvicorn", "anyio", "httpx", "torch")
"""Packages whose frames name a site better than the stdlib line that allocated (json, asyncio, ...)."""


def caller(trace: tracemalloc.Traceback) -> str:
    """The innermost frame in one of OWN_CODE's packages (tracemalloc lists frames oldest first), or the allocating
    line itself."""
    for frame in reversed(trace):
        if any(f"/{package}/" in frame.filename for package in OWN_CODE):
            return f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
    return f"{trace[-1].filename}:{trace[-1].lineno}"


class Readings:
    def __init__(self, folder: Path) -> None:
        self.folder, self.baseline, self.count = folder, None, 0

    def __call__(self, signum: int, frame: object) -> None:
        if self.baseline is None:
            tracemalloc.start(FRAMES)
            self.baseline = snapshot = tracemalloc.take_snapshot()
            atomic_write_text(self.folder / "baseline.json", json.dumps({"traced MiB": traced_mib(snapshot)}))
            return
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        self.count += 1
        growth = snapshot.compare_to(self.baseline, "traceback")[:TOP]
        rows = [
            {
                "KiB": stat.size_diff / 1024,
                "blocks": stat.count_diff,
                "allocated at": f"{stat.traceback[-1].filename}:{stat.traceback[-1].lineno}",
                "called from": caller(stat.traceback),
            }
            for stat in growth
        ]
        report = {"traced MiB": traced_mib(snapshot), "grown": rows}
        atomic_write_text(self.folder / f"growth-{self.count}.json", json.dumps(report, indent=1))


def traced_mib(snapshot: tracemalloc.Snapshot) -> float:
    return sum(stat.size for stat in snapshot.statistics("filename")) / 2**20


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, Readings(Path(sys.argv[1])))
    sys.exit(main(sys.argv[2:]))
