"""A resumed run goes on in its own log folder: same version, its metrics up to the checkpoint kept, none twice.

Lightning's CSV logger would start a new `version_N`, or, given the old version, delete its `metrics.csv`. The
rows logged before the checkpoint's step are carried over; those after it (logged before the run was killed)
are dropped, since the resumed run logs those steps again.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only


def run_folder_version(checkpoint: str | Path, save_dir: str | Path, name: str | None) -> str | None:
    """The version folder a checkpoint was written into (`<save_dir>/<name>/<version>/checkpoints/`), if any."""
    folder = Path(checkpoint).expanduser().resolve().parent
    if folder.name != "checkpoints":
        return None
    run = folder.parent
    return run.name if run.parent == (Path(save_dir).expanduser() / (name or "")).resolve() else None


@rank_zero_only
def carry_over_metrics(logger: CSVLogger, before_step: int) -> None:
    """Keep the logger's earlier rows with step < `before_step`.

    The old file is first moved aside, so a kill at any moment leaves the rows in one of the two files: a later
    resume reads `metrics.csv` when it exists (it is the newer), else the file set aside.
    """
    path = Path(logger.log_dir) / "metrics.csv"
    aside = path.with_name("metrics.csv.resuming")
    if path.is_file():
        os.replace(path, aside)
    if not aside.is_file():
        return
    lines = aside.read_text(encoding="utf-8").splitlines(keepends=True)
    complete = [line for line in lines if line.endswith("\n")]  # a kill mid-write leaves a cut last line
    rows = [row for row in csv.DictReader(complete) if row.get("step") and int(row["step"]) < before_step]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Experiment logs directory")  # not empty: it holds checkpoints
        experiment = logger.experiment
    for row in rows:
        values = {key: _number(value) for key, value in row.items() if key != "step" and value != ""}
        experiment.log_metrics(values, int(row["step"]))
    experiment.save()
    aside.unlink()


def _number(text: str) -> int | float:
    """As written: an epoch stays `3`, not `3.0`."""
    try:
        return int(text)
    except ValueError:
        return float(text)
