"""What every benchmark script shares: options, input errors, spreads, isolated workers, JSON + Markdown output."""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from discrete_diff.atomic_files import atomic_write_text
from discrete_diff.batch import Batch
from discrete_diff.errors import UserInputError
from discrete_diff.objectives import Objective
from discrete_diff.specs import build
from discrete_diff.training.data import SequenceDataModule
from discrete_diff.training.optimizer import OptimizerConfig, build_optimizer

REPO = Path(__file__).resolve().parent.parent
MODES = ("smoke", "quick", "full")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints the usage over several lines
        raise UserInputError(message)


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """--quick (minutes, to check the script works), --smoke (seconds, for the test suite), --out DIR."""
    result = _Parser(prog=f"benchmarks/{name}.py", description=description)
    size = result.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes: a few minutes, to check the script works")
    size.add_argument("--smoke", action="store_true", help="the smallest configuration: seconds, for the tests")
    result.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="where JSON and Markdown go")
    result.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one measurement in a fresh process
    return result


def mode(args: argparse.Namespace) -> str:
    return "smoke" if args.smoke else "quick" if args.quick else "full"


def choices(text: str, known, option: str) -> list[str]:
    """A comma-separated list of names, each one of `known`; a one-line error names the unknown ones."""
    chosen = [name for name in text.split(",") if name]
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        raise UserInputError(f"{option}: unknown {unknown or 'empty list'}; choose from {', '.join(known)}")
    return chosen


def positive(value: float, option: str) -> float:
    if not value > 0:
        raise UserInputError(f"{option} must be positive, got {value}")
    return value


def key_value(word: str, option: str, example: str) -> tuple[str, str]:
    """A training lever given as `option KEY=VALUE` (a config key and its value); anything else is a UserInputError."""
    key, equals, value = word.partition("=")
    if not key or not equals or key.startswith("-"):
        raise UserInputError(f"{option} {word!r}: expected KEY=VALUE, e.g. {example}")
    return key, value


def as_arguments(pairs: Iterable[tuple[str, Any]], prefix: str = "") -> list[str]:
    """(KEY, VALUE) pairs as command-line words `--{prefix}KEY VALUE`, in order (a later one wins)."""
    return [word for key, value in pairs for word in (f"--{prefix}{key}", str(value))]


def trained_data(spec: dict[str, Any], data_dir: str) -> SequenceDataModule:
    """A checkpoint's data module (`model.data["datamodule"]`: its split and tokenizer) read again from `data_dir`,
    set up for validation."""
    data = build({**spec, "init_args": {**spec["init_args"], "data_dir": data_dir}}, SequenceDataModule)
    data.prepare_data()
    data.setup("validate")
    return data


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min and max over repeats."""
    values = [float(v) for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "min": min(values), "max": max(values), "n": len(values)}


def show(stat: dict[str, float] | float | None, digits: int = 3) -> str:
    """'mean ± std' for a spread, a plain number otherwise."""
    if stat is None:
        return "—"
    if isinstance(stat, dict):
        return f"{stat['mean']:.{digits}g} ± {stat['std']:.2g}" if stat["n"] > 1 else f"{stat['mean']:.{digits}g}"
    if isinstance(stat, bool):
        return "yes" if stat else "**no**"
    return f"{stat:.{digits}g}" if isinstance(stat, float) else str(stat)


def protein_degeneration(metrics: dict[str, Any]) -> dict[str, float]:
    """The degeneration columns of every protein table (from `evaluate_proteins`), the held-out naturals' beside each:
    residues in low-complexity windows (SEG's first pass) and in homopolymer runs of 5 or more."""
    low, runs = metrics["low_complexity_fraction"], metrics["homopolymer_fraction"]
    return {"low-complexity gen": low["generated"], "low-complexity held-out": low["held_out"],
            "homopolymer gen": runs["generated"], "homopolymer held-out": runs["held_out"]}  # fmt: skip


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(show(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(script: str, job: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run one measurement as `python benchmarks/SCRIPT.py --worker JSON` so its peak memory is its own."""
    command = [sys.executable, str(REPO / "benchmarks" / script), "--worker", json.dumps(job)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"worker {job} failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def worker_output(measurement: dict[str, Any]) -> None:
    print(json.dumps({**measurement, "peak_rss_mib": peak_rss_mib()}))


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def machine() -> dict[str, Any]:
    import platform

    import torch

    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }


def write_report(out: str | Path, name: str, payload: dict[str, Any], tables: dict[str, str]) -> Path:
    """Write NAME.json and NAME.md atomically; returns the Markdown path."""
    out = Path(out)
    atomic_write_text(out / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    sections = [f"# {name}\n", f"Mode: {payload['mode']}; machine: {payload['machine']}\n"]
    sections += [f"## {title}\n\n{table}\n" for title, table in tables.items()]
    return atomic_write_text(out / f"{name}.md", "\n".join(sections))


def main_guard(name: str, run: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Bad input -> one line `benchmarks/NAME.py: error: ...` on stderr and exit status 2."""
    try:
        return run(argv)
    except UserInputError as error:
        print(f"benchmarks/{name}.py: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


def time_training_steps(
    network: nn.Module, objective: Objective, batch: Batch, mask_id: int, dtype: torch.dtype | None, size: dict
) -> dict[str, Any]:
    """Seconds per full training step (forward, backward, clipping, AdamW) over `repeats` timed runs of `steps`
    steps, after one warm-up step; dtype None = fp32, else autocast to it."""
    optimizer, _ = build_optimizer(network, OptimizerConfig(), total_steps=1000)

    def step() -> None:
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = objective.loss(network, batch, mask_id).value
        loss.backward()
        nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    seconds = []
    for _ in range(size["repeats"]):
        start = time.perf_counter()
        for _ in range(size["steps"]):
            step()
        seconds.append((time.perf_counter() - start) / size["steps"])
    return {"step_seconds": seconds, "parameters": sum(p.numel() for p in network.parameters())}


def training_row(model: str, precision: str, size: dict, result: dict) -> dict[str, Any]:
    """One table row from `time_training_steps` (plus the worker's peak_rss_mib)."""
    tokens = size["batch"] * size["length"]
    return {
        "model": model,
        "precision": precision,
        "parameters": result["parameters"],
        "step_ms": spread([1000 * s for s in result["step_seconds"]]),
        "tokens_per_sec": spread([tokens / s for s in result["step_seconds"]]),
        "peak_rss_mib": result["peak_rss_mib"],
    }


def training_rows(
    script: str, models: Sequence[str], precisions: Sequence[str], size: dict, mode: str, measure: Callable
) -> list[dict[str, Any]]:
    """Time every (model, precision) with `measure(job)`: each in a fresh process, except at the smoke size, which runs
    in-process (a fresh interpreter per configuration costs more than the test suite allows)."""
    rows = []
    for precision in precisions:
        for model in models:
            job = {"model": model, "precision": precision, "size": size}
            result = run_isolated(script, job) if mode != "smoke" else measure(job)
            result.setdefault("peak_rss_mib", peak_rss_mib())
            rows.append(training_row(model, precision, size, result))
            print(f"{model:12s} {precision}: {show(rows[-1]['tokens_per_sec'])} tokens/s", file=sys.stderr)
    return rows


def parse_precisions(text: str, known: Sequence[str]) -> list[str]:
    """`--precisions fp32,bf16` as a list, refusing unknown or empty ones."""
    return choices(text, known, "--precisions")
