"""The protein recipe per CPU-second: which training lever buys the most held-out likelihood in a fixed budget.

Each lever (config overrides on `hemopexin`, the protein family config: width 256, 4 layers, batch 64, lr 0.002 with
200 warm-up steps) trains for --budget seconds on each chosen family of the built-in `families` set, validated after
every epoch; its best checkpoint by validation is scored on the held-out tenth (whole sequences, by sequence) with
the NELBO bound. Reported: optimizer steps, seconds per step, epochs, held-out perplexity per residue (a bound) next
to the held-out set's unigram perplexity, and their ratio (target: <= 0.6 within the default budget).
`pooled` is the three families in one set (4,530 proteins). Command:
`python benchmarks/protein_recipe.py [--sets halorhodopsin,adeno_fiber] [--levers config,width-128] [--budget 300]`.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import common
from data_constrained import family_fasta
from proteins import held_out_likelihood
from training_runs import Curve, duration, finished_runs, reuse_or_train

from discrete_diff.atomic_files import atomic_write_text
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.inference import load_model
from discrete_diff.inference.run_folders import best_checkpoint

NAME = "protein_recipe"
CONFIG = "hemopexin"
FAMILIES = ("hemopexin", "adeno_fiber", "halorhodopsin")
SETS = {
    # name: (families pooled into it, max_length: <cls> + residues + <eos>, what it is)
    "halorhodopsin": (("halorhodopsin",), 320, "100 proteins, mostly 250-300 residues: long sequences"),
    "adeno_fiber": (("adeno_fiber",), 224, "242 domains, 55-195 residues: a small family"),
    "hemopexin": (("hemopexin",), 224, "4,188 domains, 21-210 residues (median 45)"),
    "pooled": (FAMILIES, 320, "the three families in one set: 4,530 proteins"),
}
WIDE, NARROW = {"data.init_args.batch_size": 64}, {"data.init_args.batch_size": 32}
LEVERS = {
    # name: config overrides on top of CONFIG (later keys win over the config's); each names its width and batch
    # (64 proteins unless the name says 32), so that a change of the config leaves every lever but `config` the same
    "config": {},
    "width-256": {"model.network.d_model": 256, **WIDE},
    "width-256-warmup-20": {"model.network.d_model": 256, "model.optimizer.warmup_steps": 20, **WIDE},
    "width-128-warmup-20": {"model.network.d_model": 128, "model.optimizer.warmup_steps": 20, **WIDE},
    "width-128-warmup-20-lr-4e-3": {"model.network.d_model": 128, "model.optimizer.warmup_steps": 20,
                                    "model.optimizer.lr": 0.004, **WIDE},
    "width-64": {"model.network.d_model": 64, **WIDE},
    "width-64-warmup-20": {"model.network.d_model": 64, "model.optimizer.warmup_steps": 20, **WIDE},
    "width-64-batch-32": {"model.network.d_model": 64, **NARROW},
}  # fmt: skip
SIZES = {
    # budget: training seconds per run; draws: K of the held-out NELBO; network/batch: the small sizes' shrinking.
    "full": {"budget": 300, "draws": 8, "network": {}, "batch": None},
    "quick": {"budget": 20, "draws": 2, "network": {"n_layers": 2}, "batch": 16},
    "smoke": {"budget": 2, "draws": 1, "network": {"d_model": 16, "n_layers": 1, "n_heads": 2}, "batch": 4},
}


def pooled_fasta(name: str, data_dir: str, out: Path) -> Path:
    """The set's families of the built-in `families` set as one FASTA file (labels dropped)."""
    parts = [family_fasta(family, data_dir, out).read_text(encoding="utf-8") for family in SETS[name][0]]
    return atomic_write_text(out / "data" / f"recipe_{name}.faa", "".join(parts))


def train(name: str, corpus: Path, lever: str, size: dict, args, out: Path) -> dict:
    """One run of a lever on a set for the budget; its best checkpoint by validation scored on the held-out set."""
    _, max_length, _ = SETS[name]
    overrides = {"data.init_args.corpus": corpus, "data.init_args.max_length":
                 max_length, "model.network.max_length": max_length}  # fmt: skip
    overrides |= {f"model.network.{key}": value for key, value in size["network"].items()}
    overrides |= {"data.init_args.batch_size": size["batch"]} if size["batch"] else {}
    overrides |= LEVERS[lever]
    overrides |= {"trainer.val_check_interval": 1.0, "trainer.check_val_every_n_epoch": 1}
    overrides |= {"trainer.max_time": duration(int(args.budget)), "trainer.max_steps": 10**6}
    overrides |= {"trainer.logger.init_args.save_dir": out / "runs", "trainer.logger.init_args.name": f"{name}_{lever}"}
    overrides |= {"trainer.enable_progress_bar": "false", "trainer.enable_model_summary": "false"}
    cli = build_cli(["--config", CONFIG, "--seed_everything", str(args.seed), *common.as_arguments(overrides.items())])
    curve = Curve("residue")
    cli.trainer.callbacks.append(curve)
    fit(cli)
    checkpoint = str(best_checkpoint(cli.trainer.log_dir).path)
    model = load_model(checkpoint)
    held_out = [r.sequence for r in cli.datamodule.validation_records]
    likelihood = held_out_likelihood(model, held_out, size["draws"])
    steps = cli.trainer.global_step
    seconds = curve.points[-1]["seconds"] if curve.points else float(args.budget)
    best = min(curve.points, key=lambda p: p["bits_per_residue"])
    return {"set": name, "lever": lever, "parameters": sum(p.numel() for p in model.network.parameters()),
            "steps": steps, "seconds per step": seconds / max(1, steps),
            "epochs": steps / max(1, cli.trainer.num_training_batches), "best epoch": best["epochs"],
            "held-out ppl <=": likelihood["nelbo_perplexity_per_residue"],
            "unigram ppl": likelihood["unigram_perplexity"],
            "ratio": likelihood["nelbo_perplexity_per_residue"] / likelihood["unigram_perplexity"],
            "train proteins": len(cli.datamodule.train_records), "held-out proteins": len(held_out),
            "checkpoint": checkpoint, "curve": curve.points}  # fmt: skip


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument(
        "--sets", default="halorhodopsin,adeno_fiber", help=f"comma-separated, from: {', '.join(SETS)}"
    )
    options.add_argument("--levers", default=",".join(LEVERS), help=f"comma-separated, from: {', '.join(LEVERS)}")
    options.add_argument("--budget", type=float, default=None, help="training seconds per run (default 300)")
    options.add_argument("--seed", type=int, default=0, help="training seed")
    options.add_argument("--data-dir", default=str(common.REPO / "data"), help="where built-in data sets live")
    args = options.parse_args(argv)
    mode = common.mode(args)
    size = SIZES[mode]
    args.budget = common.positive(size["budget"] if args.budget is None else args.budget, "--budget")
    sets = common.choices(args.sets, SETS, "--sets")
    levers = common.choices(args.levers, LEVERS, "--levers")
    corpora = {name: pooled_fasta(name, args.data_dir, Path(args.out)) for name in sets}  # a missing family fails now
    print(f"this run: {len(sets) * len(levers)} runs x ~{args.budget + 40:g} s", file=sys.stderr)
    out = Path(args.out)
    record = out / f"{NAME}_runs.json"
    finished = finished_runs(record)
    runs = []
    for name in sets:
        for lever in levers:
            key = {"set": name, "lever": lever, "budget": args.budget, "mode": mode, "seed": args.seed}
            runs.append(
                reuse_or_train(record, finished, key, partial(train, name, corpora[name], lever, size, args, out))[0]
            )
            print(f"{name} {lever}: ppl {runs[-1]['held-out ppl <=']:.2f} (ratio {runs[-1]['ratio']:.3f}) after "
                  f"{runs[-1]['steps']} steps", file=sys.stderr)  # fmt: skip
    payload = {"benchmark": NAME, "mode": mode, "machine": common.machine(), "size": size,
               "budget_seconds": args.budget, "levers": {n: LEVERS[n] for n in levers}, "runs": runs}  # fmt: skip
    columns = ["set", "lever", "parameters", "steps", "seconds per step", "epochs", "best epoch", "held-out ppl <=",
               "unigram ppl", "ratio", "train proteins", "held-out proteins"]  # fmt: skip
    tables = {
        "Held-out perplexity per residue (NELBO bound, best checkpoint) after the same budget; ratio to the held-out "
        "set's unigram perplexity (target <= 0.6)": common.markdown_table(runs, columns),
        "Levers (overrides on the hemopexin config)": common.markdown_table(
            [{"lever": n, "overrides": ", ".join(f"{k}={v}" for k, v in LEVERS[n].items()) or "none"} for n in levers],
            ["lever", "overrides"],
        ),
        "Sets": common.markdown_table([{"set": n, "about": SETS[n][2]} for n in sets], ["set", "about"]),
    }
    print(common.write_report(out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
