"""Does the ± of `eval` mean what it says on real blocks? Repeat the bound with different seeds and compare.

The exact-toy coverage checks are tests (tests/test_likelihood_estimate.py). Here the data are a checkpoint's
validation blocks (256 tokens for the default config), where the truth is unknown: the mean over every repeat
stands in for it. For each K the table gives the spread of the estimates across seeds, the typical reported
standard error, their ratio (about 1 if the ± is right, below 1 if it overstates), and how often a run's
estimate lies within 2 of its standard errors of the grand mean.
Command: `python benchmarks/standard_error.py --checkpoint C --data D [--time-draws 1,8] [--quick] [--out DIR]`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import common

from discrete_diff.commands.eval import evaluate, evaluation_data
from discrete_diff.inference import load_model

NAME = "standard_error"
SIZES = {
    "full": {"repeats": 10, "max_batches": None},
    "quick": {"repeats": 4, "max_batches": 8},
    "smoke": {"repeats": 3, "max_batches": 1},
}


def summarise(time_draws: int, runs: list[dict], truth: float) -> dict:
    estimates = [r["bits"] for r in runs]
    errors = [r["error"] for r in runs]
    spread = statistics.stdev(estimates) if len(estimates) > 1 else 0.0
    rms_error = math.sqrt(statistics.fmean(e * e for e in errors))
    within = [abs(r["bits"] - truth) <= 2 * r["error"] for r in runs]
    return {
        "time_draws": time_draws,
        "repeats": len(runs),
        "mean_bits": statistics.fmean(estimates),
        "spread_across_seeds": spread,
        "mean_standard_error": statistics.fmean(errors),
        "rms_standard_error": rms_error,
        "spread_over_error": spread / rms_error if rms_error > 0 else None,
        "within_two_errors": sum(within) / len(within),
    }


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--checkpoint", required=True, help="a checkpoint or exported directory (masked diffusion)")
    options.add_argument("--data", default=None, help="as for `eval --data`; default: the recorded built-in set")
    options.add_argument("--data-dir", default="data", help="where built-in sets are kept (default: data)")
    options.add_argument("--time-draws", default="1,8", help="comma-separated K values (default 1,8)")
    options.add_argument("--repeats", type=int, default=None, help="seeds per K (default by mode)")
    options.add_argument("--batch-size", type=int, default=32, help="sequences per batch (default 32)")
    args = options.parse_args(argv)
    mode = common.mode(args)
    size = SIZES[mode]
    repeats = int(common.positive(size["repeats"] if args.repeats is None else args.repeats, "--repeats"))
    try:
        draws = [int(k) for k in args.time_draws.split(",")]
    except ValueError:
        raise common.UserInputError(f"--time-draws {args.time_draws!r}: expected comma-separated integers") from None
    if min(draws) < 1:
        raise common.UserInputError(f"--time-draws {args.time_draws!r}: every K must be at least 1")
    if not Path(args.checkpoint).exists():
        raise common.UserInputError(f"{args.checkpoint}: checkpoint not found")
    model = load_model(args.checkpoint)
    lookup = argparse.Namespace(data=args.data, use_recorded_data=False, data_dir=args.data_dir,
                                batch_size=args.batch_size)  # fmt: skip
    data = evaluation_data(model, lookup)
    runs: dict[int, list[dict]] = {}
    for k in draws:
        runs[k] = []
        for seed in range(repeats):
            bound = evaluate(model, data, k, size["max_batches"], seed)
            if bound.exact:
                raise common.UserInputError(f"{args.checkpoint}: an autoregressive model has no Monte Carlo error")
            runs[k].append({"seed": seed, "bits": bound.bits_per_unit, "error": bound.bits_per_unit_error,
                            "sequences": bound.sequences, "unit": bound.unit})  # fmt: skip
            print(f"K={k} seed {seed}: {bound.summary()}", file=sys.stderr)
    weights = {k: k * len(r) for k, r in runs.items()}
    truth = sum(weights[k] * statistics.fmean(x["bits"] for x in r) for k, r in runs.items()) / sum(weights.values())
    summary = [summarise(k, runs[k], truth) for k in draws]
    payload = {
        "benchmark": NAME,
        "mode": mode,
        "machine": common.machine(),
        "checkpoint": args.checkpoint,
        "data": args.data,
        "size": size,
        "grand_mean_bits": truth,
        "summary": summary,
        "runs": runs,
    }
    columns = ["time_draws", "repeats", "mean_bits", "spread_across_seeds", "rms_standard_error",
               "spread_over_error", "within_two_errors"]  # fmt: skip
    unit = next(iter(runs.values()))[0]["unit"]
    tables = {f"Bits per {unit} over seeds, against the reported ± (grand mean {truth:.4f})": (
        common.markdown_table(summary, columns)
    )}  # fmt: skip
    print(common.write_report(args.out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
