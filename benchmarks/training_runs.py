"""What the budget-timed benchmark scripts share about their training runs: Lightning's time limit, a learning
curve recorded at every validation, and the runs an earlier invocation finished."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L

from discrete_diff.atomic_files import atomic_write_text


class Curve(L.Callback):
    """(seconds since training started, validation bits/char, step, epochs) at every validation; `unit` names the
    logged number, val/bits_per_UNIT, and the key it is kept under (bits_per_UNIT)."""

    def __init__(self, unit: str = "character") -> None:
        self.points: list[dict] = []
        self.start = 0.0
        self.key = f"bits_per_{unit}"

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        bits = trainer.callback_metrics.get(f"val/{self.key}")
        if bits is not None and not trainer.sanity_checking:
            point = {"seconds": time.perf_counter() - self.start, self.key: float(bits), "step": trainer.global_step}
            self.points.append({**point, "epochs": trainer.global_step / max(1, trainer.num_training_batches)})


def duration(seconds: float) -> str:
    """Lightning's DD:HH:MM:SS (`trainer.max_time`), whole seconds."""
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days:02d}:{hours:02d}:{minutes:02d}:{seconds:02d}"


def finished_runs(path: Path) -> list[dict]:
    """The runs an earlier invocation recorded in `path` whose checkpoints are still there."""
    if not path.exists():
        return []
    return [r for r in json.loads(path.read_text(encoding="utf-8")) if Path(r["checkpoint"]).exists()]


def reuse_or_train(record: Path, finished: list[dict], key: dict, train: Callable[[], dict]) -> tuple[dict, bool]:
    """The run recorded under `key` in `finished` (the latest), or a new one from `train()`, added to `finished` and
    written to `record` at once (so an interrupted invocation keeps it); also whether it was reused."""
    earlier = [r for r in finished if r["key"] == key]
    if earlier:
        return earlier[-1], True
    finished.append({**train(), "key": key})
    atomic_write_text(record, json.dumps(finished, indent=1))
    return finished[-1], False
