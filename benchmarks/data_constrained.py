"""Masked diffusion against AR where data is scarce and repeated: held-out bits at each model's best checkpoint.

Data sets: three protein families of the built-in `families` set (hemopexin: 4,188 domains; adeno_fiber: 242;
halorhodopsin: 100) and about 1 MB of Shakespeare (`data.train_characters`; the held-out works are the whole
corpus's). For each, masked diffusion and AR (the `_ar` configs: the same network with causal attention, exact NLL)
train for the same `--budget` seconds, validated after every epoch; each run's best checkpoint by validation is
scored on the whole held-out set (diffusion: the NELBO with K time draws). Proteins are held out as whole sequences
(`sequence`) and by identity clusters (`identity`: no held-out protein at 50% identity or more to a training one).
Reported: held-out bits per residue/character at the best checkpoints, the epoch of each best, the ratio
diffusion/AR, the crossover epoch (from which on the diffusion bound, mean over seeds, stays below AR's NLL at the
same steps), and the learning curves against epochs (data_constrained.png). `--scale 4` doubles the width (4x the
parameters), `--scale 16` quadruples it (the width-64 protein recipe at width 256, the configs' former width).
`--option KEY=VALUE` (repeatable) gives both models a setting, e.g. `model.network.dropout=0.1`: a regulariser compared
best to best. `--orders K` also scores diffusion's best checkpoints (reused ones too) with the bound over K unmasking
orders (`objectives.order_bound`: tighter than the NELBO; a network call per token and order). Finished runs are
recorded in OUT/data_constrained_runs.json and reused by a rerun with the same OUT.
Command: `python benchmarks/data_constrained.py [--quick] [--sets ...] [--seeds N] [--scale 1,4,16]
[--option KEY=VALUE ...] [--orders K] [--out DIR]`.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import common
import torch
import yaml
from jsonargparse import ArgumentError
from matplotlib.figure import Figure
from training_runs import Curve, duration, finished_runs, reuse_or_train

from discrete_diff.atomic_files import atomic_save_figure, atomic_write_text
from discrete_diff.commands.config_files import load_config
from discrete_diff.commands.messages import user_message
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.errors import UserInputError
from discrete_diff.inference import load_model
from discrete_diff.inference.run_folders import best_checkpoint
from discrete_diff.objectives.order_bound import importance_weighted_bound
from discrete_diff.protein.builtin_sets import sequences_path
from discrete_diff.protein.families import LABEL_FIELD
from discrete_diff.protein.fasta import FastaPolicy, header_value, read_fasta
from discrete_diff.training.precision import autocast_dtype

NAME = "data_constrained"
MODELS = ("diffusion", "ar")
SPLIT_IDENTITY = 0.5
SCALES = ("1", "4", "16")
"""Parameter factors: the width grows by the square root (transformer parameters grow with width squared)."""


@dataclass(frozen=True)
class DataSet:
    kind: str
    """protein (a family of the built-in `families` set) or text."""
    configs: tuple[str, str]
    """The diffusion config and its AR twin."""
    max_length: int
    about: str

    @property
    def unit(self) -> str:
        return "residue" if self.kind == "protein" else "character"

    def splits(self) -> tuple[str, ...]:
        return ("sequence", "identity") if self.kind == "protein" else ("works",)


PROTEIN_CONFIGS = ("hemopexin", "hemopexin_ar")
SETS = {
    "hemopexin": DataSet("protein", PROTEIN_CONFIGS, 224, "4,188 hemopexin domains, 21-210 residues"),
    "adeno_fiber": DataSet("protein", PROTEIN_CONFIGS, 224, "242 adenovirus fiber domains, 55-195 residues"),
    "halorhodopsin": DataSet("protein", PROTEIN_CONFIGS, 320, "100 halorhodopsins, mostly 250-300 residues"),
    "text": DataSet("text", ("shakespeare_char", "shakespeare_char_ar"), 256, "Shakespeare, training works capped"),
}
ALL_SPLITS = tuple(dict.fromkeys(split for data in SETS.values() for split in data.splits()))
SIZES = {
    # budget: training seconds per run; every: validate every N steps (None: after every epoch); draws: K of the
    # held-out NELBO; characters: the text's training cap; overhead: seconds per run besides training (estimate).
    "full": {"network": {}, "budget": 1200, "every": None, "draws": 8, "eval_batches": 64, "text_block": 256,
             "text_batch": 16, "protein_batch": None, "warmup": None, "characters": 1_000_000, "overhead": 60},
    "quick": {"network": {"d_model": 64, "n_layers": 2, "n_heads": 2}, "budget": 15, "every": 20, "draws": 4,
              "eval_batches": 8, "text_block": 128, "text_batch": 16, "protein_batch": 32, "warmup": 10,
              "characters": 200_000, "overhead": 10},
    "smoke": {"network": {"d_model": 16, "n_layers": 1, "n_heads": 2}, "budget": 2, "every": 2, "draws": 2,
              "eval_batches": 2, "text_block": 32, "text_batch": 4, "protein_batch": 4, "warmup": 2,
              "characters": 10_000, "overhead": 3},
}  # fmt: skip


def family_fasta(family: str, data_dir: str, out: Path) -> Path:
    """One family's records of the built-in `families` set (fetched on first use) in OUT/data/FAMILY.faa."""
    source = sequences_path("families", data_dir)
    records, _ = read_fasta(source, FastaPolicy())
    chosen = [r for r in records if header_value(r, LABEL_FIELD, source) == family]
    if not chosen:
        raise common.UserInputError(f"{source}: no record of family {family}")
    return atomic_write_text(out / "data" / f"{family}.faa", "".join(f">{r.id}\n{r.sequence}\n" for r in chosen))


def width(config: str, size: dict, scale: int) -> int:
    """The network width of a run: the size's (or the config's) times sqrt(scale), scale being the parameter factor."""
    base = size["network"].get("d_model", load_config(config)["model"]["network"]["d_model"])
    return base * math.isqrt(scale)


def data_overrides(name: str, split: str, size: dict, args, out: Path) -> list[str]:
    spec = SETS[name]
    prefix = "--data.init_args."
    if spec.kind == "text":
        overrides = [f"{prefix}corpus", args.corpus, f"{prefix}data_dir", args.data_dir]
        overrides += [f"{prefix}train_characters", str(size["characters"]), f"{prefix}max_length"]
        return overrides + [str(size["text_block"]), f"{prefix}batch_size", str(size["text_batch"])]
    overrides = [f"{prefix}corpus", str(family_fasta(name, args.data_dir, out)), f"{prefix}max_length"]
    overrides += [str(spec.max_length)]
    overrides += [f"{prefix}batch_size", str(size["protein_batch"])] if size["protein_batch"] else []
    return overrides + ([f"{prefix}split_identity", str(SPLIT_IDENTITY)] if split == "identity" else [])


def train(name: str, split: str, model: str, seed: int, scale: int, size: dict, args, out: Path) -> dict:
    """One run for the budget, validated often; its best checkpoint by validation scored on the held-out set."""
    spec, config = SETS[name], SETS[name].configs[MODELS.index(model)]
    max_length = size["text_block"] if spec.kind == "text" else spec.max_length
    overrides = ["--config", config, "--seed_everything", str(seed), *data_overrides(name, split, size, args, out)]
    network = {**size["network"], "d_model": width(config, size, scale), "max_length": max_length}
    overrides += common.as_arguments(network.items(), "model.network.")
    # Validation after every epoch (or every few steps at the small sizes), each a candidate best checkpoint.
    every = ["1.0", "--trainer.check_val_every_n_epoch", "1"] if size["every"] is None else [str(size["every"])]
    overrides += ["--trainer.val_check_interval", *every]
    overrides += ["--trainer.max_time", duration(int(args.budget)), "--trainer.max_steps", str(10**6)]
    overrides += ["--trainer.logger.init_args.save_dir", str(out / "runs"), "--trainer.logger.init_args.name"]
    overrides += [f"{name}_{split}_{model}_x{scale}_seed{seed}", "--trainer.enable_progress_bar", "false",
                  "--trainer.enable_model_summary", "false"]  # fmt: skip
    overrides += ["--model.optimizer.warmup_steps", str(size["warmup"])] if size["warmup"] else []
    overrides += common.as_arguments(args.option)  # after the benchmark's own, so that they win
    try:
        cli = build_cli(overrides)
    except ArgumentError as error:  # most likely an --option the configs do not have
        settings = options_label(args)
        raise UserInputError(f"{config}: {user_message(error)} (the --option settings: {settings})") from None
    curve = Curve(spec.unit)
    cli.trainer.callbacks.append(curve)
    fit(cli)
    best = best_checkpoint(cli.trainer.log_dir)
    trained = load_model(str(best.path))
    data = cli.datamodule
    batch = size["text_batch"] if spec.kind == "text" else data.batch_size
    bound = trained.objective.likelihood(
        trained.network,
        data.validation_batches(batch),
        trained.mask_id,
        time_draws=size["draws"],
        max_batches=size["eval_batches"] if spec.kind == "text" else None,
    ).per_unit(spec.unit, data.tokens_per_unit())
    key = f"bits_per_{spec.unit}"
    points = [{"epochs": p["epochs"], "step": p["step"], "bits": p[key], "seconds": p["seconds"]} for p in curve.points]
    chosen = min(points, key=lambda p: p["bits"])  # the validation the best checkpoint was saved at
    return {
        "set": name,
        "split": split,
        "model": model,
        "seed": seed,
        "scale": scale,
        "parameters": sum(p.numel() for p in trained.network.parameters()),
        "steps": cli.trainer.global_step,
        "epochs": cli.trainer.global_step / max(1, cli.trainer.num_training_batches),
        "best_epoch": chosen["epochs"],
        "best_step": chosen["step"],
        "checkpoint": str(best.path),
        "held_out_bits": bound.bits_per_unit,
        "held_out_error": bound.bits_per_unit_error or 0.0,
        "exact": bound.exact,
        "unit": spec.unit,
        **training_data(data, spec.kind),
        "curve": points,
    }


def order_score(run: dict, orders: int, size: dict, args) -> dict:
    """A diffusion run's best checkpoint, held out, by the bound over `orders` unmasking orders (bf16 where native)."""
    spec, autocast = SETS[run["set"]], autocast_dtype()
    trained = load_model(run["checkpoint"])
    data = common.trained_data(trained.data["datamodule"], args.data_dir)
    batch = size["text_batch"] if spec.kind == "text" else data.batch_size
    with nullcontext() if autocast is None else torch.autocast("cpu", dtype=autocast):
        bound = importance_weighted_bound(
            trained.network,
            data.validation_batches(batch),
            trained.mask_id,
            orders=orders,
            max_batches=size["eval_batches"] if spec.kind == "text" else None,
        ).per_unit(spec.unit, data.tokens_per_unit())
    return {"orders": orders, "order_bits": bound.bits_per_unit, "order_error": bound.bits_per_unit_error or 0.0,
            "order_precision": str(autocast or torch.float32).removeprefix("torch.")}  # fmt: skip


def training_data(data, kind: str) -> dict:
    """How much each side holds: proteins and residues, or characters."""
    if kind == "text":
        return {"train_units": data.splits["train"].characters, "held_out_units": data.splits["validation"].characters}
    return {
        "train_sequences": len(data.train_records),
        "held_out_sequences": len(data.validation_records),
        "train_units": sum(len(r.sequence) for r in data.train_records),
        "held_out_units": sum(len(r.sequence) for r in data.validation_records),
    }


def mean_curve(runs: list[dict]) -> dict[int, tuple[float, float]]:
    """step -> (epochs, validation bits averaged over the seeds), at the steps every seed validated at."""
    steps = set.intersection(*({p["step"] for p in r["curve"]} for r in runs)) if runs else set()
    by_step = {s: [p for r in runs for p in r["curve"] if p["step"] == s] for s in sorted(steps)}
    return {s: (points[0]["epochs"], statistics.fmean(p["bits"] for p in points)) for s, points in by_step.items()}


def crossover_epoch(diffusion: list[dict], ar: list[dict]) -> float | None:
    """The epoch from which on the diffusion bound (mean over seeds) stays below AR's NLL at every validation both
    made; None if it is not below at the last one. (A dip below at the first validations, where both are near the
    unigram entropy, is not a crossover.)"""
    ours, theirs = mean_curve(diffusion), mean_curve(ar)
    crossover = None
    for step in sorted(ours.keys() & theirs.keys()):
        below = ours[step][1] < theirs[step][1]
        crossover = (crossover if crossover is not None else ours[step][0]) if below else None
    return crossover


def comparison_row(name: str, split: str, scale: int, runs: list[dict]) -> dict:
    """Diffusion against AR on one set, split and scale: means over seeds at the best checkpoints."""
    group = {m: [r for r in runs if (r["set"], r["split"], r["scale"], r["model"]) == (name, split, scale, m)]
             for m in MODELS}  # fmt: skip
    row: dict = {"set": name, "split": split, "scale": scale, "unit": SETS[name].unit, "seeds": len(group["ar"])}
    for model, chosen in group.items():
        bits = [r["held_out_bits"] for r in chosen]
        row[f"{model} bits"] = statistics.fmean(bits)
        row[f"{model} spread"] = max(bits) - min(bits)
        row[f"{model} best epoch"] = statistics.fmean(r["best_epoch"] for r in chosen)
        row[f"{model} epochs"] = statistics.fmean(r["epochs"] for r in chosen)
    row["ratio"] = row["diffusion bits"] / row["ar bits"]
    if all("order_bits" in r for r in group["diffusion"]):
        row["diffusion bits (orders)"] = statistics.fmean(r["order_bits"] for r in group["diffusion"])
        row["ratio (orders)"] = row["diffusion bits (orders)"] / row["ar bits"]
    row["crossover epoch"] = crossover_epoch(group["diffusion"], group["ar"])
    row["train units"] = group["ar"][0]["train_units"]
    return row


def target_rows(comparisons: list[dict]) -> list[dict]:
    """Per split and scale: on how many families diffusion's bound is at or below AR's NLL (target: 2 of 3)."""
    rows = []
    for split, scale in dict.fromkeys((c["split"], c["scale"]) for c in comparisons if c["unit"] == "residue"):
        chosen = [c for c in comparisons if (c["split"], c["scale"], c["unit"]) == (split, scale, "residue")]
        wins = [c["set"] for c in chosen if c["ratio"] <= 1.0]
        met = len(wins) >= 2 if len(chosen) == 3 else None
        rows.append({"split": split, "scale": scale, "families": len(chosen), "ratio <= 1.0": ", ".join(wins) or "none",
                     "target met": met})  # fmt: skip
    return rows


def plot(runs: list[dict], path: Path) -> None:
    """Validation bits against epochs, one panel per set, split and scale; a star at each run's best."""
    panels = list(dict.fromkeys((r["set"], r["split"], r["scale"]) for r in runs))
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.5 * columns, 3.5 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, (name, split, scale) in zip(axes, panels, strict=False):
        for run in (r for r in runs if (r["set"], r["split"], r["scale"]) == (name, split, scale)):
            epochs = [p["epochs"] for p in run["curve"]]
            label = f"{run['model']} seed {run['seed']}"
            line = axis.plot(epochs, [p["bits"] for p in run["curve"]], marker=".", markersize=3, label=label)[0]
            best = min(run["curve"], key=lambda p: p["bits"])
            axis.plot([best["epochs"]], [best["bits"]], marker="*", markersize=10, color=line.get_color())
        unit = SETS[name].unit
        axis.set(title=f"{name}, {split} split, x{scale}", xlabel="epochs", ylabel=f"validation bits/{unit}")
        axis.legend(fontsize="x-small")
    for axis in axes[len(panels) :]:
        axis.set_visible(False)
    figure.tight_layout()
    atomic_save_figure(figure, path)


def options_label(args) -> str:
    """The --option settings as given, `KEY=VALUE, ...` ('none' without any)."""
    return ", ".join(f"{key}={value}" for key, value in args.option) or "none"


def run_key(name: str, split: str, model: str, seed: int, scale: int, mode: str, args) -> dict:
    """What makes a finished run reusable: the composed config, set, split, seed, scale, size, budget and
    --option settings."""
    config = SETS[name].configs[MODELS.index(model)]
    recipe = hashlib.sha256(yaml.safe_dump(load_config(config)).encode()).hexdigest()
    corpus = args.corpus if SETS[name].kind == "text" else "families"
    return {"set": name, "split": split, "model": model, "seed": seed, "scale": scale, "mode": mode,
            "budget": args.budget, "corpus": corpus, "recipe": recipe, "options": options_label(args)}  # fmt: skip


def plan(
    sets: list[str], seeds: int, scales: list[int], splits: tuple[str, ...] | None = None
) -> list[tuple[str, str, str, int, int]]:
    """Every (set, split, model, seed, scale) to train, in order; `splits` keeps only those (None: every split)."""
    return [(name, split, model, seed, scale) for scale in scales for name in sets for split in SETS[name].splits()
            if splits is None or split in splits for model in MODELS for seed in range(seeds)]  # fmt: skip


def estimate(runs: int, budget: float, overhead: float) -> str:
    hours = runs * (budget + overhead) / 3600
    return f"{runs} runs x ({budget:g} s of training + ~{overhead:g} s) = ~{hours:.1f} h"


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, from: {', '.join(SETS)}")
    options.add_argument("--budget", type=float, default=None, help="training seconds per run (default 1200)")
    options.add_argument("--seeds", type=int, default=None, help="training seeds per model (default 2; quick 1)")
    options.add_argument("--scale", default="1", help="1 (the configs' width), 4 (2x width), 16 (4x); comma-separated")
    options.add_argument(
        "--splits", default=None, help=f"comma-separated, from: {', '.join(ALL_SPLITS)} (default: all)"
    )
    options.add_argument("--corpus", default="shakespeare", help="the text set's corpus (default shakespeare)")
    options.add_argument("--data-dir", default=str(common.REPO / "data"), help="where built-in data sets live")
    options.add_argument("--orders", type=int, default=0,
                         help="also score diffusion with the bound over K unmasking orders (default: off)")  # fmt: skip
    options.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="a setting for both models, e.g. model.network.dropout=0.1 (repeatable)")  # fmt: skip
    args = options.parse_args(argv)
    args.option = [common.key_value(word, "--option", "model.network.dropout=0.1") for word in args.option]
    mode = common.mode(args)
    size = SIZES[mode]
    args.budget = common.positive(size["budget"] if args.budget is None else args.budget, "--budget")
    seeds = int(common.positive(({"full": 2}.get(mode, 1)) if args.seeds is None else args.seeds, "--seeds"))
    sets = common.choices(args.sets, SETS, "--sets")
    scales = [int(s) for s in common.choices(args.scale, SCALES, "--scale")]
    splits = None if args.splits is None else tuple(common.choices(args.splits, ALL_SPLITS, "--splits"))
    if args.orders < 0:
        raise UserInputError(f"--orders must be 0 (off) or a number of orders, got {args.orders}")
    todo = plan(sets, seeds, scales, splits)
    if not todo:
        raise UserInputError(f"--splits {args.splits}: none of the sets {', '.join(sets)} has that split")
    full = plan(list(SETS), 2, [1])
    print(f"this run: {estimate(len(todo), args.budget, size['overhead'])}", file=sys.stderr)
    print(f"the full run (scale 1; twice that with --scale 1,4): {estimate(len(full), 1200, 60)}", file=sys.stderr)
    out = Path(args.out)
    record = out / f"{NAME}_runs.json"
    finished = finished_runs(record)
    runs = []
    for name, split, model, seed, scale in todo:
        key = run_key(name, split, model, seed, scale, mode, args)
        runs.append(
            reuse_or_train(record, finished, key, partial(train, name, split, model, seed, scale, size, args, out))[0]
        )
        done = runs[-1]
        print(f"{name} {split} {model} x{scale} seed {seed}: {done['held_out_bits']:.4f} bits/{done['unit']} "
              f"at epoch {done['best_epoch']:.1f} of {done['epochs']:.1f}", file=sys.stderr)  # fmt: skip
    if args.orders:
        for done in runs:
            if done["model"] == "diffusion" and done.get("orders") != args.orders:
                done.update(order_score(done, args.orders, size, args))  # the record's own entry: saved below
        atomic_write_text(record, json.dumps(finished, indent=1))
    comparisons = [comparison_row(n, s, c, runs) for n, s, c in dict.fromkeys((r[0], r[1], r[4]) for r in todo)]
    targets = target_rows(comparisons)
    plot(runs, out / f"{NAME}.png")
    payload = {"benchmark": NAME, "mode": mode, "machine": common.machine(), "size": size,
               "budget_seconds": args.budget, "seeds": seeds, "scales": scales, "sets": sets,
               "split_identity": SPLIT_IDENTITY, "options": options_label(args), "runs": runs,
               "comparisons": comparisons, "targets": targets}  # fmt: skip
    columns = ["set", "split", "scale", "unit", "seeds", "diffusion bits", "ar bits", "ratio", "crossover epoch"]
    columns += ["diffusion bits (orders)", "ratio (orders)"] if args.orders else []
    columns += ["diffusion best epoch", "ar best epoch", "diffusion epochs", "ar epochs", "train units"]
    run_columns = ["set", "split", "model", "scale", "seed", "parameters", "steps", "epochs", "best_epoch"]
    run_columns += ["held_out_bits", "held_out_error", "train_sequences", "held_out_sequences", "train_units"]
    run_columns += ["order_bits", "order_error"] if args.orders else []
    tables = {
        "Held-out bits per unit at the best checkpoints (diffusion: NELBO bound; AR: exact NLL), means over seeds; "
        f"ratio diffusion/AR; settings besides the configs': {options_label(args)}": common.markdown_table(
            comparisons, columns
        ),
        "Target: ratio <= 1.0 on at least two of the three families": common.markdown_table(
            targets, ["split", "scale", "families", "ratio <= 1.0", "target met"]
        ),
        "Runs": common.markdown_table(runs, run_columns),
        "Data sets": common.markdown_table(
            [{"set": n, "configs": " / ".join(SETS[n].configs), "about": SETS[n].about} for n in sets],
            ["set", "configs", "about"],
        ),
    }
    print(common.write_report(out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
