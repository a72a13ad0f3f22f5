"""A training run's log folder where a checkpoint is expected: its best checkpoint by validation.

Each checkpoint ModelCheckpoint writes for a monitored number holds that callback's state, in which the file's own
score is recorded (`best_k_models`, keyed by path). That score is what is compared: not the file name (which
holds the step only) and not metrics.csv (whose steps need not line up with the saves, and which a resumed run
splits); a file copied or moved keeps its score, because it is looked up by name.
"""

from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserInputError

CHECKPOINTS = "checkpoints"
"""The folder Lightning writes checkpoints to inside a run's log folder (runs/NAME/version_N)."""
_MODE = re.compile(r"'mode': '(min|max)'")
"""ModelCheckpoint's state key names its mode (its state does not): ModelCheckpoint{'monitor': ..., 'mode': ...}."""


@dataclass(frozen=True)
class BestCheckpoint:
    """The checkpoint a run folder stands for, and how it was chosen."""

    path: Path
    monitor: str
    mode: str
    score: float
    candidates: int

    def describe(self) -> str:
        """One line: which file, its score, and among how many."""
        extreme = "lowest" if self.mode == "min" else "highest"
        return f"{self.path} ({self.monitor} {self.score:.6g}, the {extreme} of {self.candidates} scored checkpoints)"


def checkpoints_folder(path: str | Path) -> Path | None:
    """The checkpoints of a run given its log folder (holding checkpoints/) or that folder itself; None for any
    other folder (an exported model directory). A folder of several runs is an error naming them."""
    folder = Path(path).expanduser()
    if (folder / CHECKPOINTS).is_dir():
        return folder / CHECKPOINTS
    if folder.name == CHECKPOINTS and folder.is_dir():
        return folder
    runs = sorted(str(p.parent) for p in folder.glob(f"*/{CHECKPOINTS}") if p.is_dir())
    if runs:
        raise UserInputError(f"{folder}: a folder of runs; pass one of them: {', '.join(runs)}")
    return None


def best_checkpoint(path: str | Path) -> BestCheckpoint:
    """The checkpoint of a run (its log folder or checkpoints/ folder) with the best recorded validation score."""
    folder = checkpoints_folder(path)
    if folder is None:
        raise UserInputError(f"{path}: not a run's log folder (no {CHECKPOINTS}/ inside)")
    scored = [(file, score) for file in sorted(folder.glob("*.ckpt")) if (score := _own_score(file)) is not None]
    if not scored:
        raise UserInputError(
            f"{folder}: no checkpoint records a validation score (has the run validated yet?); "
            f"pass a file instead, e.g. {folder / 'last.ckpt'}"
        )
    kinds = {(monitor, mode) for _, (monitor, mode, _) in scored}
    if len(kinds) > 1:
        names = ", ".join(f"{monitor} ({mode})" for monitor, mode in sorted(kinds))
        raise UserInputError(f"{folder}: its checkpoints were chosen by different numbers ({names}); pass a file")
    monitor, mode = kinds.pop()
    sign = 1.0 if mode == "min" else -1.0
    file, (_, _, score) = min(scored, key=lambda entry: sign * entry[1][2])
    return BestCheckpoint(file, monitor, mode, score, len(scored))


def _own_score(file: Path) -> tuple[str, str, float] | None:
    """(monitor, mode, score) a ModelCheckpoint recorded for this very file inside it; None for a file saved
    without one (last.ckpt, a periodic save)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # mmap: only the callbacks' small state is read, not the tensors.
            checkpoint = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError):
        raise UserInputError(f"{file}: not a readable checkpoint") from None
    callbacks = checkpoint.get("callbacks") if isinstance(checkpoint, dict) else None
    for key, state in (callbacks or {}).items():
        mode = _MODE.search(key)
        if not (isinstance(state, dict) and mode and state.get("monitor")):
            continue
        for saved, score in (state.get("best_k_models") or {}).items():
            if Path(saved).name == file.name:
                return state["monitor"], mode.group(1), float(score)
    return None
