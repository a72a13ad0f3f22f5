"""What the budget-timed benchmark scripts share about their training runs: Lightning's time limit, a learning
curve recorded at every validation, and the runs an earlier invocation finished."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L


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
