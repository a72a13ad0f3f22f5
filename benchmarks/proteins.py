"""The protein numbers: train on hemopexin and on the proteome, generate, and run the protein metrics.

hemopexin (90% train / 10% held out by sequence): held-out NELBO perplexity per residue next to the unigram
perplexity; for generated sequences the HMM hit rate (held-out naturals: ceiling, shuffled ones: floor), novelty,
diversity, composition distance and degeneration (low-complexity and homopolymer fractions, the held-out naturals'
beside them). proteome: held-out NELBO perplexity next to the unigram one. Generation speed:
residues per second for 100 sequences of length 100. Each model trains for `--budget` seconds with its config
(configs hemopexin, proteome). Command: `python benchmarks/proteins.py [--quick] [--out DIR]`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import common
import torch
from training_runs import duration

from discrete_diff.commands.train import build_cli, fit
from discrete_diff.generation import choose_lengths, generate
from discrete_diff.inference import TrainedModel, load_model
from discrete_diff.protein.alignment import read_alignment
from discrete_diff.protein.batching import encode_proteins, protein_loader
from discrete_diff.protein.builtin_sets import DATASETS, alignment_paths
from discrete_diff.protein.metrics import unigram_perplexity
from discrete_diff.protein_report import evaluate_proteins, format_table, plot_comparison
from discrete_diff.sampling import SamplingSettings

NAME = "proteins"
SIZES = {
    # budget: training seconds per data set; generated: sequences for the metrics; speed: sequences x length.
    "full": {"network": {}, "budget": 1200, "warmup": None, "every": 500, "generated": 200, "steps": 100,
             "speed": (100, 100), "draws": 4},
    "quick": {"network": {"d_model": 64, "n_layers": 2, "n_heads": 2}, "budget": 40, "warmup": 20, "every": 100,
              "generated": 20, "steps": 20, "speed": (20, 100), "draws": 2},
    "smoke": {"network": {"d_model": 16, "n_layers": 1, "n_heads": 2}, "budget": 3, "warmup": 2, "every": 5,
              "generated": 4, "steps": 4, "speed": (4, 20), "draws": 1},
}  # fmt: skip
TEMPERATURES = (1.0, 0.9)  # sampling temperatures for the hemopexin samples; the first is the model's own


def train(dataset: str, size: dict, args, out: Path):
    """Train the data set's config for the budget; returns (the CLI with its data module, the last checkpoint)."""
    overrides = ["--config", dataset, "--data.init_args.data_dir"]
    overrides += [args.data_dir, "--trainer.max_time", duration(int(args.budget))]
    overrides += ["--trainer.logger.init_args.save_dir", str(out / "runs"), "--trainer.enable_progress_bar", "false"]
    overrides += ["--trainer.val_check_interval", str(size["every"]), "--trainer.enable_model_summary", "false"]
    if size["warmup"] is not None:  # short runs: stop on time with a flat learning rate after a short warm-up
        overrides += ["--trainer.max_steps", str(10**6), "--model.optimizer.warmup_steps", str(size["warmup"])]
    overrides += common.as_arguments(size["network"].items(), "model.network.")
    cli = build_cli(overrides)
    started = time.perf_counter()
    fit(cli)
    seconds = time.perf_counter() - started
    return cli, cli.trainer.checkpoint_callback.last_model_path, seconds


def held_out_likelihood(model: TrainedModel, held_out: list[str], draws: int) -> dict:
    batches = protein_loader(encode_proteins(model.tokenizer, held_out), model.tokenizer, model.max_length, 32)
    bound = model.objective.likelihood(model.network, batches, model.mask_id, time_draws=draws)
    return {
        "nelbo_perplexity_per_residue": bound.perplexity,
        "standard_error_nats": bound.standard_error,
        "unigram_perplexity": unigram_perplexity(held_out),
        "residues": bound.tokens,
    }


def generation_speed(model: TrainedModel, size: dict) -> dict:
    count, length = size["speed"]
    settings = SamplingSettings(steps=size["steps"])
    generate(model, [length] * 2, settings=settings)  # warm-up: first calls pay for allocation
    seconds, run = common.timed(lambda: generate(model, [length] * count, settings=settings, batch_size=count))
    calls = run.network_calls
    return {"sequences": count, "length": length, "steps": size["steps"], "seconds": seconds,
            "network_calls": calls, "residues_per_second": count * length / seconds}  # fmt: skip


def hemopexin(size: dict, args, out: Path) -> dict:
    """Train, then generate at each sampling temperature (the first, 1.0, is the model's own distribution)."""
    cli, checkpoint, seconds = train("hemopexin", size, args, out)
    model, data = load_model(checkpoint), cli.datamodule
    train_ids = {r.id for r in data.train_records}
    rows = read_alignment(alignment_paths("hemopexin", args.data_dir)[0], keep=train_ids)
    held_out = [r.sequence for r in data.validation_records]
    train_seqs = [r.sequence for r in data.train_records]
    by_temperature = {}
    for index, temperature in enumerate(TEMPERATURES):
        settings = SamplingSettings(steps=size["steps"], temperature=temperature)
        lengths = choose_lengths(model, size["generated"], None, torch.Generator().manual_seed(0))
        generated = [r.text for r in generate(model, lengths, settings=settings, seed=0, batch_size=50).records]
        by_temperature[temperature] = evaluate_proteins(
            generated, train_seqs, held_out, alignment_rows=rows, model=None if index else model,
            time_draws=size["draws"],
        )  # fmt: skip
        if index == 0:
            plot_comparison(out / f"{NAME}_hemopexin.png", generated, held_out)
            print(format_table(by_temperature[temperature]))
    metrics = by_temperature[TEMPERATURES[0]]
    return {"steps": cli.trainer.global_step, "train_seconds": seconds, "checkpoint": checkpoint, "metrics": metrics,
            "by_temperature": [temperature_row(t, m) for t, m in by_temperature.items()],
            "speed": generation_speed(model, size)}  # fmt: skip


def temperature_row(temperature: float, metrics: dict) -> dict:
    return {"temperature": temperature, "HMM hit gen": metrics["family_hmm"]["generated"],
            "median novelty": metrics["novelty"]["median"],
            "diversity (mean pairwise id)": metrics["diversity"]["generated_mean_pairwise_identity"],
            "held-out diversity": metrics["diversity"]["held_out_mean_pairwise_identity"],
            "composition JS bits": metrics["composition"]["js_bits"],
            **common.protein_degeneration(metrics)}  # fmt: skip


def proteome(size: dict, args, out: Path) -> dict:
    cli, checkpoint, seconds = train("proteome", size, args, out)
    model = load_model(checkpoint)
    held_out = [r.sequence for r in cli.datamodule.validation_records]
    likelihood = held_out_likelihood(model, held_out, size["draws"])
    return {"steps": cli.trainer.global_step, "train_seconds": seconds, "checkpoint": checkpoint,
            "likelihood": likelihood, "speed": generation_speed(model, size)}  # fmt: skip


def summary_rows(results: dict) -> list[dict]:
    rows = []
    for name, result in results.items():
        likelihood = result.get("likelihood") or result["metrics"]["likelihood"]
        row = {"data set": name, "train steps": result["steps"], "train s": result["train_seconds"],
               "held-out NELBO ppl <=": likelihood["nelbo_perplexity_per_residue"],
               "unigram ppl": likelihood["unigram_perplexity"],
               "beats unigram": likelihood["nelbo_perplexity_per_residue"] < likelihood["unigram_perplexity"],
               "residues/s": result["speed"]["residues_per_second"]}  # fmt: skip
        if "metrics" in result:
            metrics = result["metrics"]
            row.update({"HMM hit gen": metrics["family_hmm"]["generated"],
                        "HMM hit held-out": metrics["family_hmm"]["held_out"],
                        "HMM hit shuffled": metrics["family_hmm"]["shuffled_held_out"],
                        "median novelty": metrics["novelty"]["median"],
                        "diversity (mean pairwise id)": metrics["diversity"]["generated_mean_pairwise_identity"],
                        "composition JS bits": metrics["composition"]["js_bits"],
                        **common.protein_degeneration(metrics)})  # fmt: skip
        rows.append(row)
    return rows


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--datasets", default="hemopexin,proteome", help="comma-separated: hemopexin, proteome")
    options.add_argument("--budget", type=float, default=None, help="training seconds per data set")
    options.add_argument("--data-dir", default=str(common.REPO / "data"), help="where built-in sets are kept")
    args = options.parse_args(argv)
    mode = common.mode(args)
    size = SIZES[mode]
    args.budget = common.positive(size["budget"] if args.budget is None else args.budget, "--budget")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown or not datasets:
        raise common.UserInputError(f"--datasets {args.datasets!r}: choose from {', '.join(sorted(DATASETS))}")
    out = Path(args.out)
    torch.manual_seed(0)
    runners = {"hemopexin": hemopexin, "proteome": proteome}
    results = {name: runners[name](size, args, out) for name in datasets}
    rows = summary_rows(results)
    payload = {"benchmark": NAME, "mode": mode, "machine": common.machine(), "size": size,
               "budget_seconds": args.budget, "results": results, "summary": rows}  # fmt: skip
    columns = list(dict.fromkeys(c for row in rows for c in row))
    tables = {"Proteins": common.markdown_table(rows, columns)}
    if "hemopexin" in results:
        by_temperature = results["hemopexin"]["by_temperature"]
        tables["Hemopexin samples by sampling temperature (HMM target >= 0.8)"] = common.markdown_table(
            by_temperature, list(by_temperature[0])
        )
    report = common.write_report(out, NAME, payload, tables)
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
