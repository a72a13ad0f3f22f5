"""Validation bits/char of masked diffusion against the autoregressive baseline trained the same way.

Two comparisons on Shakespeare characters: the same wall-clock budget, and the same number of training tokens.
Diffusion reports its NELBO bound over K time draws with the standard error; AR its exact NLL; then the ratio.
Learning curves (bits per character against wall time) go to likelihood.png. Checkpoints stay under OUT/runs for
benchmarks/sampling.py. Each finished run is recorded in OUT/likelihood_runs.json at once: an interrupted
benchmark started again with the same OUT reuses the runs it finished (same variant, seed, size and budget) and
trains only the rest. Command: `python benchmarks/likelihood.py [--quick] [--out DIR]`.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import common
import yaml
from matplotlib.figure import Figure
from training_runs import Curve, duration, finished_runs, reuse_or_train

from discrete_diff.atomic_files import atomic_save_figure
from discrete_diff.commands.config_files import load_config
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.inference import load_model
from discrete_diff.training.text_data import BUILTIN_CORPORA

NAME = "likelihood"


@dataclass(frozen=True)
class Variant:
    """One training recipe: a config and the overrides that make it differ from that config.

    `warm_start` = (variant, share): that variant trains first for `share` of the budget, and this one continues
    from its weights for the rest, so the total budget is the same as every other row's."""

    config: str
    overrides: tuple[str, ...] = ()
    about: str = ""
    warm_start: tuple[str, float] | None = None


MDLM = "shakespeare_char"
OBJECTIVE = "--model.objective.init_args."


def density(name: str, **args: float) -> tuple[str, str]:
    spec = {"class_path": f"discrete_diff.time_densities.{name}", "init_args": args}
    return f"{OBJECTIVE}time_density", json.dumps(spec)


VARIANTS = {
    "ar": Variant("shakespeare_char_ar", about="autoregressive baseline: causal attention, exact NLL"),
    "mdlm": Variant(MDLM, about="masked diffusion, the default config"),
    "elbo-weights": Variant(
        MDLM, (f"{OBJECTIVE}train_weighting", "elbo"), "the default before clipped weights: the plain NELBO's 1/t"
    ),
    "time-window": Variant(
        MDLM, density("WindowTime", low=0.0, high=0.5, floor=0.3), "70% of the times in [0, 0.5], importance-weighted"
    ),
    "two-maskings": Variant(
        MDLM, ("--data.init_args.batch_size", "8", f"{OBJECTIVE}maskings_per_sequence", "2"),
        "8 sequences x 2 maskings: the same rows per step, antithetic times across the copies",
    ),
    "norm-sequences": Variant(MDLM, (f"{OBJECTIVE}normalization", "sequences"), "loss averaged per sequence"),
    "norm-batch": Variant(MDLM, (f"{OBJECTIVE}normalization", "batch"), "loss divided by the constant B x L"),
    "clipped": Variant(
        MDLM, (f"{OBJECTIVE}train_weighting", "clipped", f"{OBJECTIVE}weight_cap", "5"),
        "1/t weights capped at 5 (the default config's since they won)",
    ),
    "flat": Variant(MDLM, (f"{OBJECTIVE}train_weighting", "flat"), "every masked token weighs the same (MaskGIT)"),
    "lr-6e-3": Variant(MDLM, ("--model.optimizer.lr", "0.006"), "twice the learning rate"),
    "batch-32": Variant(
        MDLM, ("--data.init_args.batch_size", "32", "--model.optimizer.lr", "0.005"), "batch 32, learning rate 5e-3"
    ),
    "narrow-96x6": Variant(
        MDLM, ("--model.network.d_model", "96", "--model.network.n_layers", "6", "--model.network.n_heads", "4"),
        "width 96, 6 layers (0.7M parameters)",
    ),
    "wide-192x3": Variant(
        MDLM, ("--model.network.d_model", "192", "--model.network.n_layers", "3", "--model.network.n_heads", "4"),
        "width 192, 3 layers (1.4M parameters)",
    ),
    "ar-to-mdlm": Variant(
        MDLM, (f"{OBJECTIVE}attention_anneal", "0.3"),
        "AR for 40% of the budget, then diffusion from its weights, attention opened over the first 30%",
        warm_start=("ar", 0.4),
    ),
    "bd3-4": Variant(
        "shakespeare_char_bd3",
        ("--model.objective.init_args.block_size", "4"),
        "block diffusion, blocks of 4: NELBO over masking levels in [0, 1]",
    ),
    "bd3-4-k2": Variant(
        "shakespeare_char_bd3",
        ("--model.objective.init_args.block_size", "4", "--data.init_args.batch_size", "8",
         f"{OBJECTIVE}maskings_per_sequence", "2"),
        "blocks of 4, 8 sequences x 2 maskings over one clean pass: the same scored rows per step",
    ),
    "bd3-4-full-window": Variant(
        "shakespeare_char_bd3",
        ("--model.objective.init_args.block_size", "4",
         f"{OBJECTIVE}schedule", '{"class_path": "discrete_diff.schedules.LogLinearSchedule"}'),
        "blocks of 4 trained on every masking rate, not the clipped window [0.3, 0.8]",
    ),
    "bd3-8": Variant(
        "shakespeare_char_bd3",
        ("--model.objective.init_args.block_size", "8"),
        "block diffusion, blocks of 8: NELBO over masking levels in [0, 1]",
    ),
    "bd3-16": Variant(
        "shakespeare_char_bd3",
        ("--model.objective.init_args.block_size", "16"),
        "block diffusion, blocks of 16: NELBO over masking levels in [0, 1]",
    ),
}  # fmt: skip
"""Every recipe the benchmark can train, by name (`--variants`); the ratio column divides by "ar"."""
BASELINE = "ar"
SIZES = {
    # budget: seconds of training per model; steps: the equal-token comparison; draws: K for the NELBO.
    "full": {"network": {}, "block": 256, "batch": 16, "budget": 600, "steps": 1000, "every": 100, "val": 8,
             "draws": 8, "eval_batches": 128},
    "quick": {"network": {"d_model": 64, "n_layers": 2, "n_heads": 2}, "block": 128, "batch": 16, "budget": 40,
              "steps": 60, "every": 20, "val": 4, "draws": 4, "eval_batches": 8},
    "smoke": {"network": {"d_model": 16, "n_layers": 1, "n_heads": 2}, "block": 32, "batch": 4, "budget": 2,
              "steps": 4, "every": 2, "val": 1, "draws": 2, "eval_batches": 1},
}  # fmt: skip


def train(model: str, comparison: str, seed: int, size: dict, args, out: Path) -> dict:
    """Train one variant under one comparison's limit (after its warm start, if it has one); evaluate its last
    checkpoint on the validation blocks."""
    variant = VARIANTS[model]
    if variant.warm_start is None:
        return train_phase(model, comparison, seed, size, args, out)
    source, share = variant.warm_start
    first = train_phase(source, comparison, seed, size, args, out, share=share, label=f"{model}_start")
    second = train_phase(model, comparison, seed, size, args, out, share=1.0 - share, init_from=first["checkpoint"])
    second["steps"] += first["steps"]
    second["training_tokens"] += first["training_tokens"]
    second["wall_seconds"] += first["wall_seconds"]
    offset = first["curve"][-1]["seconds"] if first["curve"] else 0.0
    second["curve"] = first["curve"] + [{**p, "seconds": p["seconds"] + offset} for p in second["curve"]]
    return second


def train_phase(
    model: str,
    comparison: str,
    seed: int,
    size: dict,
    args,
    out: Path,
    share: float = 1.0,
    init_from: str | None = None,
    label: str | None = None,
) -> dict:
    """One Lightning run of `model` for `share` of the budget (or of the steps)."""
    wall = comparison == "wall_clock"
    variant = VARIANTS[model]
    budget, steps = max(1, round(args.budget * share)), max(1, round(args.steps * share))
    overrides = ["--config", variant.config, "--seed_everything", str(seed)]
    overrides += ["--data.init_args.corpus", args.corpus, "--data.init_args.data_dir", str(common.REPO / "data")]
    overrides += [
        "--data.init_args.max_length",
        str(size["block"]),
        "--data.init_args.batch_size",
        str(size["batch"]),
    ]
    overrides += ["--model.network.max_length", str(size["block"])]
    overrides += common.as_arguments(size["network"].items(), "model.network.")
    # Wall-clock runs stop on time; the cosine follows the share of max_time spent, so both end annealed.
    overrides += ["--trainer.max_time", duration(budget) if wall else "null"]
    overrides += ["--trainer.max_steps", str(10**6 if wall else steps)]
    overrides += ["--trainer.val_check_interval", str(size["every"]), "--trainer.limit_val_batches", str(size["val"])]
    overrides += ["--trainer.logger.init_args.save_dir", str(out / "runs"), "--trainer.logger.init_args.name"]
    overrides += [f"{comparison}_{label or model}_seed{seed}", "--trainer.enable_progress_bar", "false"]
    overrides += ["--model.init_from", init_from] if init_from else []
    overrides += [
        "--trainer.enable_model_summary",
        "false",
        "--model.optimizer.warmup_steps",
        str(min(100, steps)),
    ]
    cli = build_cli([*overrides, *variant.overrides])
    curve = Curve()
    cli.trainer.callbacks.append(curve)
    started = time.perf_counter()
    fit(cli)
    seconds = time.perf_counter() - started
    checkpoint = cli.trainer.checkpoint_callback.last_model_path
    trained = load_model(checkpoint)
    bound = trained.objective.likelihood(
        trained.network,
        cli.datamodule.validation_batches(size["batch"]),
        trained.mask_id,
        time_draws=size["draws"],
        max_batches=size["eval_batches"],
    ).per_unit("character", cli.datamodule.tokens_per_unit())
    steps = cli.trainer.global_step
    return {
        "model": model,
        "seed": seed,
        "comparison": comparison,
        "steps": steps,
        "training_tokens": steps * size["batch"] * size["block"],
        "wall_seconds": seconds,
        "bits_per_character": bound.bits_per_unit,
        "bits_per_character_error": bound.bits_per_unit_error,
        "exact": bound.exact,
        "time_draws": bound.time_draws,
        "eval_tokens": bound.tokens,
        "checkpoint": checkpoint,
        "curve": curve.points,
    }


def summary_row(comparison: str, model: str, runs: list[dict], baseline: list[dict]) -> dict:
    """Mean and spread over seeds of one variant, and its ratio to the baseline's mean (the target's measure)."""
    bits = [r["bits_per_character"] for r in runs]
    reference = statistics.fmean(r["bits_per_character"] for r in baseline) if baseline else math.nan
    mean = statistics.fmean(bits)
    return {
        "comparison": comparison,
        "model": model,
        "seeds": len(runs),
        "bits_per_character": mean,
        "spread": max(bits) - min(bits),
        "mean_error": statistics.fmean(r["bits_per_character_error"] for r in runs),
        "ratio_to_ar": mean / reference,
        "steps": statistics.fmean(r["steps"] for r in runs),
        "about": VARIANTS[model].about,
    }


def plot(runs: list[dict], path: Path) -> None:
    """Learning curves: validation bits/char against wall time, one line per variant and seed."""
    comparisons = sorted({r["comparison"] for r in runs})
    figure = Figure(figsize=(7 * len(comparisons), 4.5))
    axes = figure.subplots(1, len(comparisons), squeeze=False)[0]
    for axis, comparison in zip(axes, comparisons, strict=True):
        for run in (r for r in runs if r["comparison"] == comparison):
            points = run["curve"]
            label = f"{run['model']} seed {run['seed']} ({'exact NLL' if run['exact'] else 'NELBO bound'})"
            seconds = [p["seconds"] for p in points]
            axis.plot(seconds, [p["bits_per_character"] for p in points], marker=".", label=label)
        axis.set(title=comparison.replace("_", " "), xlabel="wall time (s)", ylabel="validation bits/char")
        axis.legend(fontsize="x-small")
    figure.tight_layout()
    atomic_save_figure(figure, path)


def grouped(runs: list[dict], comparison: str, model: str) -> list[dict]:
    return [r for r in runs if r["comparison"] == comparison and r["model"] == model]


def run_key(comparison: str, model: str, seed: int, mode: str, args) -> dict:
    """What makes a finished run reusable: the same recipe (the composed config, not only its name), seed, size,
    corpus and limit; a warm-started variant's first phase counts as part of its recipe."""
    variant = VARIANTS[model]
    limit = args.budget if comparison == "wall_clock" else args.steps
    recipe = [variant.config, yaml.safe_dump(load_config(variant.config)), *variant.overrides]
    if variant.warm_start is not None:
        source, share = variant.warm_start
        recipe += [run_key(comparison, source, seed, mode, args)["recipe"], str(share)]
    return {"comparison": comparison, "model": model, "seed": seed, "mode": mode, "corpus": args.corpus,
            "limit": limit, "recipe": hashlib.sha256("\n".join(recipe).encode()).hexdigest()}  # fmt: skip


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument(
        "--corpus", default="shakespeare", help="a built-in corpus name or a path (default shakespeare)"
    )
    options.add_argument("--budget", type=int, default=None, help="seconds of training per model (wall-clock run)")
    options.add_argument("--steps", type=int, default=None, help="training steps per model (equal-token run)")
    options.add_argument("--variants", default="ar,mdlm", help=f"comma-separated, from: {', '.join(VARIANTS)}")
    options.add_argument("--seeds", default="0", help="comma-separated training seeds (default 0)")
    options.add_argument(
        "--comparisons",
        default="wall_clock,equal_tokens",
        help="wall_clock (same --budget), equal_tokens (same --steps)",
    )
    args = options.parse_args(argv)
    mode = common.mode(args)
    size = SIZES[mode]
    args.budget = common.positive(size["budget"] if args.budget is None else args.budget, "--budget")
    args.steps = int(common.positive(size["steps"] if args.steps is None else args.steps, "--steps"))
    if args.corpus not in BUILTIN_CORPORA and not Path(args.corpus).exists():
        known = ", ".join(BUILTIN_CORPORA)
        raise common.UserInputError(f"--corpus {args.corpus}: no such file or folder, and not a dataset name ({known})")
    models = common.choices(args.variants, VARIANTS, "--variants")
    comparisons = common.choices(args.comparisons, ("wall_clock", "equal_tokens"), "--comparisons")
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        raise common.UserInputError(f"--seeds {args.seeds!r}: expected comma-separated integers") from None
    out = Path(args.out)
    record = out / f"{NAME}_runs.json"
    finished = finished_runs(record)
    runs = []
    for comparison in comparisons:
        for model in models:
            for seed in seeds:
                key = run_key(comparison, model, seed, mode, args)
                done, reused = reuse_or_train(
                    record, finished, key, partial(train, model, comparison, seed, size, args, out)
                )
                runs.append(done)
                print(
                    f"{comparison} {model} seed {seed}: {done['bits_per_character']:.4f} "
                    f"({'reused' if reused else 'trained'})",
                    file=sys.stderr,
                )
    summary = [
        summary_row(comparison, model, grouped(runs, comparison, model), grouped(runs, comparison, BASELINE))
        for comparison in comparisons
        for model in models
    ]
    plot(runs, out / f"{NAME}.png")
    payload = {
        "benchmark": NAME,
        "mode": mode,
        "machine": common.machine(),
        "size": size,
        "corpus": args.corpus,
        "budget_seconds": args.budget,
        "steps": args.steps,
        "seeds": seeds,
        "runs": runs,
        "summary": summary,
    }
    columns = ["comparison", "model", "seeds", "bits_per_character", "spread", "mean_error", "ratio_to_ar", "steps"]
    tables = {
        "Validation bits/char (diffusion: NELBO bound, mean over seeds; AR: exact NLL); ratio to AR": (
            common.markdown_table(summary, columns)
        ),
        "Runs": common.markdown_table(
            runs,
            ["comparison", "model", "seed", "steps", "training_tokens", "wall_seconds", "bits_per_character"],
        ),
        "Variants": common.markdown_table(
            [
                {
                    "model": m,
                    "config": VARIANTS[m].config,
                    "overrides": " ".join(VARIANTS[m].overrides),
                    "about": VARIANTS[m].about,
                }
                for m in models
            ],  # fmt: skip
            ["model", "config", "overrides", "about"],
        ),
    }
    print(common.write_report(out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
