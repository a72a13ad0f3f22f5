"""The sampler race in one figure: judge bits against seconds per sample, every model and sampler of several runs.

Reads the `sampling.json` that `benchmarks/sampling.py` wrote for each model (the same AR baseline and judge in
each) and draws two panels, seconds per sample at batch 1 and at batch N (the batch's time / N), one marker per
model and sampler, the AR + KV cache rows as stars. Writes race.png, race.json and race.md (each model's best
judge bits and the fastest setting within 5% of it, at batch 1 and N). No training, no sampling: seconds.
Command: `python benchmarks/race.py --runs bd3-4=DIR,mdlm=DIR [--out DIR]`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import common

from discrete_diff.atomic_files import atomic_save_figure

NAME = "race"
TOLERANCE = 0.05  # a setting counts when its judge bits are within 5% of its model's best


def read_runs(text: str) -> dict[str, dict]:
    """`label=folder,...` -> label -> that folder's sampling.json; a one-line error for a bad entry."""
    runs = {}
    for entry in (e for e in text.split(",") if e):
        label, _, folder = entry.partition("=")
        path = Path(folder) / "sampling.json"
        if not label or not folder:
            raise common.UserInputError(f"--runs: {entry!r} is not LABEL=FOLDER")
        if not path.is_file():
            raise common.UserInputError(f"--runs: {path} not found (run benchmarks/sampling.py --out {folder})")
        runs[label] = json.loads(path.read_text(encoding="utf-8"))
    if not runs:
        raise common.UserInputError("--runs: empty; give LABEL=FOLDER,... of benchmarks/sampling.py outputs")
    return runs


def per_sample(row: dict, batch: int) -> tuple[float, float]:
    """(seconds per sample at batch 1, at batch N) of one sampling.json row."""
    return row["batch_1_seconds"]["mean"], row[f"batch_{batch}_seconds"] / batch


def summary(label: str, result: dict) -> dict:
    """A model's best judge bits and its fastest settings within TOLERANCE of them, against its run's AR row."""
    batch = result["size"]["samples"]
    rows, reference = result["rows"], result["reference"]
    best = min(r["judge_bits_per_character"]["mean"] for r in rows)
    near = [r for r in rows if r["judge_bits_per_character"]["mean"] <= (1 + TOLERANCE) * best]
    ar_1, ar_n = per_sample(reference, batch)
    fastest_1 = min(near, key=lambda r: per_sample(r, batch)[0])
    fastest_n = min(near, key=lambda r: per_sample(r, batch)[1])
    return {
        "model": label,
        "best_judge_bits": best,
        "ar_judge_bits": reference["judge_bits_per_character"]["mean"],
        "fastest_near_best_batch_1": fastest_1["sampler"],
        "speedup_vs_ar_batch_1": ar_1 / per_sample(fastest_1, batch)[0],
        f"fastest_near_best_batch_{batch}": fastest_n["sampler"],
        f"speedup_vs_ar_batch_{batch}": ar_n / per_sample(fastest_n, batch)[1],
    }


def plot(runs: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    markers = "osD^vP<>"
    for index, (label, result) in enumerate(runs.items()):
        batch = result["size"]["samples"]
        bits = [r["judge_bits_per_character"]["mean"] for r in result["rows"]]
        times = [per_sample(r, batch) for r in result["rows"]]
        reference = result["reference"]
        ar_bits, ar_times = reference["judge_bits_per_character"]["mean"], per_sample(reference, batch)
        for panel, axis in enumerate(axes):
            axis.scatter([t[panel] for t in times], bits, marker=markers[index % len(markers)], label=label, alpha=0.7)
            axis.plot([ar_times[panel]], [ar_bits], "k*", markersize=12, label="AR + KV cache" if index == 0 else None)
    for panel, axis in enumerate(axes):
        batch = next(iter(runs.values()))["size"]["samples"]
        axis.set(
            xscale="log",
            xlabel=f"seconds per sample, batch {1 if panel == 0 else batch}",
            ylabel="judge bits/char (lower is better)",
        )
        axis.legend(fontsize=8)
    figure.tight_layout()
    atomic_save_figure(figure, path)


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--runs", required=True, help="LABEL=FOLDER,... of benchmarks/sampling.py outputs")
    args = options.parse_args(argv)
    runs = read_runs(args.runs)
    batches = {result["size"]["samples"] for result in runs.values()}
    if len(batches) != 1:
        raise common.UserInputError(f"--runs: the runs used different batch sizes {sorted(batches)}; compare like runs")
    rows = [summary(label, result) for label, result in runs.items()]
    plot(runs, Path(args.out) / f"{NAME}.png")
    payload = {"benchmark": NAME, "mode": common.mode(args), "machine": common.machine(), "rows": rows}
    table = common.markdown_table(rows, list(rows[0]))
    print(common.write_report(args.out, NAME, payload, {"Best judge bits and the fastest settings near them": table}))
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
