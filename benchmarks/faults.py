"""Fault tolerance: a tiny training run killed with SIGKILL at random moments, resumed from last.ckpt each time.

The same run also goes uninterrupted. Per kill: the step it was killed at, the step of the checkpoint it resumed
from and the steps lost (trained again). At the end: whether every train loss and validation number of the killed
and resumed run equals the uninterrupted run's, and which logged steps are missing. Both runs log every step and
flush the CSV at every step, so the step a kill lands on is read from the log. Each kill lands at a random
training step plus a random fraction of a step, so kills also fall inside checkpoint writes and validations.
Command: `python benchmarks/faults.py [--smoke|--quick] [--kills N] [--seed S] [--corpus PATH] [--out DIR]`.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import common
import torch
import yaml

from discrete_diff.commands.config_files import load_config

NAME = "faults"
SIZES = {
    "full": {"steps": 400, "every": 10, "val": 50, "kills": 10},
    "quick": {"steps": 120, "every": 10, "val": 30, "kills": 4},
    "smoke": {"steps": 30, "every": 5, "val": 10, "kills": 1},
}
COMPARED = ("train/loss", "val/")
"""Logged columns that must be equal: the training loss and every validation number (not timings)."""


def write_config(root: Path, size: dict) -> Path:
    """The config `tiny` with its last.ckpt every `every` steps (its first callback)."""
    config = load_config("tiny")
    last = config["trainer"]["callbacks"][0]
    assert last["class_path"].endswith("LastCheckpoint"), "the config tiny lists LastCheckpoint first"
    last["init_args"] = {"every_n_train_steps": size["every"]}
    path = root / "tiny_faults.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_command(config: Path, corpus: str, save_dir: Path, size: dict, *extra: str) -> list[str]:
    """The config with a CSV row logged and flushed at every step."""
    return [
        sys.executable, "-m", "discrete_diff", "train", "--config", str(config),
        "--data.init_args.corpus", corpus, "--trainer.logger.init_args.save_dir", str(save_dir),
        "--trainer.logger.init_args.flush_logs_every_n_steps", "1", "--trainer.log_every_n_steps", "1",
        "--trainer.max_steps", str(size["steps"]), "--trainer.val_check_interval", str(size["val"]),
        "--trainer.enable_progress_bar", "false", *extra,
    ]  # fmt: skip


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "HF_HUB_OFFLINE": "1"}


def logged(save_dir: Path) -> list[dict[str, str]]:
    """Every row of the run's metrics.csv files (a partly written last line is skipped)."""
    rows = []
    for path in sorted(save_dir.rglob("metrics.csv")):
        with open(path, newline="") as file:
            rows += [row for row in csv.DictReader(file) if row.get("step") not in (None, "")]
    return rows


def steps_done(save_dir: Path) -> int:
    """Training steps completed, as far as the flushed log shows."""
    try:
        return 1 + max((int(r["step"]) for r in logged(save_dir) if r.get("train/loss")), default=-1)
    except (ValueError, csv.Error):  # a line being written
        return 0


def compared_values(save_dir: Path) -> dict[tuple[int, str], str]:
    return {
        (int(row["step"]), key): value
        for row in logged(save_dir)
        for key, value in row.items()
        if key.startswith(COMPARED) and value != ""
    }


def training_seconds(save_dir: Path) -> float:
    """Seconds of training (start-up excluded), from the throughput monitor's log."""
    return max(float(row["train/time"]) for row in logged(save_dir) if row.get("train/time"))


def checkpoint_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])


def run_to_end(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"training failed: {result.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def kill_at(command: list[str], cwd: Path, save_dir: Path, step: int, delay: float) -> dict | None:
    """Start `command`, SIGKILL it `delay` seconds after the log shows `step` steps; None if it finished first."""
    process = subprocess.Popen(command, cwd=cwd, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while steps_done(save_dir) < step and process.poll() is None:
        time.sleep(0.01)
    time.sleep(delay)
    if process.poll() is not None:
        if process.returncode != 0:
            raise RuntimeError(f"training failed: {process.stderr.read().decode().strip().splitlines()[-1:]}")
        return None
    process.send_signal(signal.SIGKILL)
    process.wait()
    return {"killed_after_step": steps_done(save_dir)}


def faulted_run(
    config: Path, corpus: str, root: Path, size: dict, kills: int, step_seconds: float, seed: int
) -> list[dict]:
    """Kill the run `kills` times at random moments, resuming from last.ckpt each time, then let it finish."""
    save_dir = root / "killed"
    rng = random.Random(seed)
    targets = sorted(rng.sample(range(1, size["steps"] - size["every"]), kills))  # while the run is surely still going
    events, resume = [], None
    for target in targets:
        extra = ("--ckpt_path", str(resume)) if resume else ("--trainer.logger.init_args.version", "version_0")
        command = train_command(config, corpus, save_dir, size, *extra)
        event = kill_at(command, root, save_dir, target, rng.uniform(0, step_seconds))
        if event is None:
            break
        last = next(save_dir.rglob("last.ckpt"), None)
        resumed_from = checkpoint_step(last) if last else 0
        lost = event["killed_after_step"] - resumed_from
        events.append({"kill": len(events) + 1, **event, "resumed_from_step": resumed_from, "steps_lost": lost})
        resume = last
    extra = ("--ckpt_path", str(resume)) if resume else ("--trainer.logger.init_args.version", "version_0")
    run_to_end(train_command(config, corpus, save_dir, size, *extra), root)
    return events


def compare(reference: dict, faulted: dict) -> dict:
    """Logged values ("step:column") the two runs share, those that differ, and those only one of them has."""
    shared = reference.keys() & faulted.keys()
    differing = [key for key in shared if reference[key] != faulted[key]]
    return {
        "values_compared": len(shared),
        "values_differing": [f"{step}:{column}" for step, column in sorted(differing)],
        "missing": [f"{step}:{column}" for step, column in sorted(reference.keys() - faulted.keys())],
        "extra": [f"{step}:{column}" for step, column in sorted(faulted.keys() - reference.keys())],
    }


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument(
        "--corpus", default="shakespeare", help="a built-in corpus name or a path (default shakespeare)"
    )
    options.add_argument("--kills", type=int, default=None, help="kills of the run (default: 10; quick 4; smoke 1)")
    options.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    args = options.parse_args(argv)
    mode = common.mode(args)
    size = SIZES[mode]
    kills = size["kills"] if args.kills is None else args.kills
    if not 1 <= kills < size["steps"] - size["every"]:
        raise common.UserInputError(f"--kills must be between 1 and {size['steps'] - size['every'] - 1}, got {kills}")
    corpus = args.corpus if args.corpus == "shakespeare" else str(Path(args.corpus).expanduser().resolve())
    out = Path(args.out).resolve()
    root = out / "faults_runs"
    if root.exists():
        raise common.UserInputError(f"--out {out}: {root} exists; remove it or choose another --out")
    root.mkdir(parents=True)
    config = write_config(root, size)
    seconds = run_to_end(train_command(config, corpus, root / "uninterrupted", size), root)
    step_seconds = training_seconds(root / "uninterrupted") / size["steps"]
    events = faulted_run(config, corpus, root, size, kills, step_seconds, args.seed)
    comparison = compare(compared_values(root / "uninterrupted"), compared_values(root / "killed"))
    lost = [e["steps_lost"] for e in events]
    summary = {
        "kills": len(events),
        "steps_lost": common.spread(lost) if lost else None,
        "identical": not comparison["values_differing"] and not comparison["extra"],
        **comparison,
    }
    payload = {"benchmark": NAME, "mode": mode, "machine": common.machine(), "size": size, "corpus": args.corpus,
               "seed": args.seed, "uninterrupted_seconds": seconds, "events": events, "summary": summary}  # fmt: skip
    tables = {
        "Kills": common.markdown_table(events, ["kill", "killed_after_step", "resumed_from_step", "steps_lost"]),
        "Final metrics against the uninterrupted run": common.markdown_table(
            [
                {
                    **summary,
                    "missing": len(comparison["missing"]),
                    "values_differing": len(comparison["values_differing"]),
                }
            ],
            ["kills", "steps_lost", "values_compared", "values_differing", "missing", "identical"],
        ),  # fmt: skip
    }
    print(common.write_report(out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
