"""Classifier-free guidance: how far a label steers samples, what it costs in diversity, and in sampling time.

Proteins: one model of the labelled built-in `families` set (config `families`, `--budget` seconds); for each family
label and w in SCALES (or `--scales`), samples drawn with that label are scored by the family's profile HMM (hit
rate), median novelty (identity to the nearest training sequence), diversity (mean pairwise identity; the naturals'
beside it), composition JS and degeneration (low-complexity and homopolymer fractions; the naturals' beside them),
beside the null label's samples (the unconditional model); the background proteome is a label to train on, not a
family, and is not scored. Text: config `shakespeare_genre` (genre labels of the 42 works); a character n-gram genre
classifier is trained on every work but one per genre and its accuracy reported on 256-character pieces of those
held-out works; then the genre accuracy, the character entropy and the share of samples in a repetition loop
(discrete_diff.text.degeneration) per label against w. Cost (no training: time depends on the network's shape, not
its weights): guided / unguided sampling time of fresh networks shaped as the two configs, at batch sizes 1 to 64,
guided with the two passes as one call on 2B rows and as two calls of B rows; the batch size from which two calls
are faster is the rule `discrete_diff.sampling.guidance.SPLIT_FROM_ROWS` should hold, and the target is read with
the rule in code.
Command: `python benchmarks/guidance.py [--quick | --smoke] [--parts proteins,text,cost] [--scales 0,1,2]
[--schedule late] [--protein-option KEY=VALUE ...] [--out DIR]` (full: about 2 h, 28.5 min of them training: the
text samples ~40 min, the cost part ~35); prints whether each target is met. `--quick --parts cost` picks the rule
in minutes.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import common
import torch
from genre_classifier import CharNgramClassifier, accuracy, chunks, unigram_entropy
from guidance_cost import cost_part, split_rule
from training_runs import duration

from discrete_diff.atomic_files import atomic_write_text
from discrete_diff.commands.config_files import CONFIG_DIR
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.generation import GenerationRun, generate
from discrete_diff.inference import TrainedModel, load_model
from discrete_diff.protein.alignment import align_sequences, read_alignment
from discrete_diff.protein.builtin_sets import DATASETS, alignment_paths
from discrete_diff.protein_report import evaluate_proteins
from discrete_diff.sampling import GUIDANCE_SCHEDULES, SamplingSettings
from discrete_diff.sampling.guidance import SPLIT_FROM_ROWS
from discrete_diff.text.degeneration import loop_share
from discrete_diff.text.labels import read_label_csv
from discrete_diff.training.text_data import resolve_corpus

NAME = "guidance"
SCALES = (0.0, 0.5, 1.0, 2.0, 4.0)
SIZES = {
    # budget: training seconds per model; proteins / texts: samples per (label, w); chunks: classifier test pieces.
    "full": {"network": {}, "budget": 900, "text_budget": 810, "block": None, "proteins": 64, "protein_steps": 64,
             "texts": 64, "text_length": 256, "text_steps": 64, "chunks": 200,
             "timing": {"network": {}, "batches": (1, 4, 16, 64), "steps": 64, "repeats": 3}},
    "quick": {"network": {"d_model": 64, "n_layers": 2, "n_heads": 2}, "budget": 60, "text_budget": 60, "block": None,
              "proteins": 24, "protein_steps": 32, "texts": 8, "text_length": 128, "text_steps": 64, "chunks": 40,
              "timing": {"network": {}, "batches": (1, 8, 64), "steps": 8, "repeats": 1}},
    "smoke": {"network": {"d_model": 16, "n_layers": 1, "n_heads": 2}, "budget": 3, "text_budget": 3, "block": 32,
              "proteins": 4, "protein_steps": 4, "texts": 2, "text_length": 32, "text_steps": 4, "chunks": 4,
              "timing": {"network": {"d_model": 16, "n_layers": 1, "n_heads": 2}, "batches": (1, 4), "steps": 4,
                         "repeats": 1}},
}  # fmt: skip
"""timing: the cost part's network shape (over the config's; {}: the config's own), batch sizes, steps, repeats."""
FINISHED = "finished.json"
"""Written beside a run's folders when its training ended: a later invocation reuses the run instead of training."""


def train(config: str, overrides: list[str], size: dict, budget: float, out: Path):
    """Train a config for `budget` seconds; (the CLI with its data module, the last checkpoint, seconds). A run that
    an earlier invocation finished in `out` with the same arguments is reused: its data module is set up, not
    trained on."""
    args = train_args(config, overrides, size, budget, out)
    cli = build_cli(args)
    marker = out / FINISHED
    done = json.loads(marker.read_text()) if marker.exists() else None
    if done is not None and same_run(done["args"], args):
        cli.datamodule.prepare_data()
        cli.datamodule.setup("validate")
        return cli, done["checkpoint"], done["seconds"]
    started = time.perf_counter()
    fit(cli)
    checkpoint, seconds = cli.trainer.checkpoint_callback.last_model_path, time.perf_counter() - started
    atomic_write_text(marker, json.dumps({"args": args, "checkpoint": checkpoint, "seconds": seconds}))
    return cli, checkpoint, seconds


def same_run(finished: list[str], args: list[str]) -> bool:
    """Whether a finished run's arguments ask for the run `args` asks for: a file named in both (the genre labels)
    is compared by its content, so a run finished from another checkout of the project is still reused."""
    return len(finished) == len(args) and all(a == b or same_file(a, b) for a, b in zip(finished, args, strict=True))


def same_file(a: str, b: str) -> bool:
    return Path(a).is_file() and Path(b).is_file() and Path(a).read_bytes() == Path(b).read_bytes()


def train_args(config: str, overrides: list[str], size: dict, budget: float, out: Path) -> list[str]:
    """The train command's arguments for a run of `config` for `budget` seconds, logged under `out`."""
    args = ["--config", config, *overrides, "--trainer.max_time", duration(budget)]
    args += ["--trainer.logger.init_args.save_dir", str(out / "runs"), "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.enable_model_summary", "false"]
    if size["block"] is not None:  # seconds-long runs: validate once at the end, no learning-rate decay
        args += ["--trainer.val_check_interval", "5", "--trainer.limit_val_batches", "2"]
        args += ["--trainer.max_steps", str(10**6), "--model.optimizer.warmup_steps", "2"]
    args += common.as_arguments(size["network"].items(), "model.network.")
    return args


def sample_texts(model: TrainedModel, count: int, size: dict, label: str | None, w: float, seed: int = 0,
                 schedule: str = "constant") -> list[str]:  # fmt: skip
    settings = SamplingSettings(steps=size["text_steps"], guidance_scale=w, guidance_schedule=schedule)
    run = generate(model, [size["text_length"]] * count, settings=settings, label=label, seed=seed, at_eos="ban")
    return [record.text for record in run.records]


def text_part(size: dict, args, out: Path) -> dict:
    overrides = ["--data.init_args.corpus", args.text_corpus, "--data.init_args.data_dir", args.data_dir,
                 "--data.init_args.label_csv", str(Path(args.text_labels).resolve())]  # fmt: skip
    if size["block"] is not None:
        overrides += ["--data.init_args.max_length", str(size["block"]), "--model.network.max_length", "64"]
    cli, checkpoint, seconds = train("shakespeare_genre", overrides, size, args.text_budget, out)
    model = load_model(checkpoint)
    root = resolve_corpus(args.text_corpus, args.data_dir)
    genre_of = read_label_csv(Path(args.text_labels))
    texts = {file: (root / file).read_text(encoding="utf-8") for file in genre_of}
    genres = sorted(set(genre_of.values()))
    held = {genre: min(f for f, g in genre_of.items() if g == genre) for genre in genres}  # one work per genre
    classifier = CharNgramClassifier().fit(
        {genre: [texts[f] for f, g in genre_of.items() if g == genre and f != held[genre]] for genre in genres}
    )
    pieces = {genre: chunks(texts[held[genre]], size["text_length"], size["chunks"]) for genre in genres}
    classifier_rows = [{"genre": genre, "held-out work": held[genre], "pieces": len(pieces[genre]),
                        "accuracy": accuracy(classifier, pieces[genre], genre)} for genre in genres]  # fmt: skip
    null = sample_texts(model, size["texts"] * len(genres), size, None, 0.0, seed=1)
    rows = []
    for genre in model.labels.names:
        for w in args.scales:
            samples = sample_texts(model, size["texts"], size, genre, w, schedule=args.schedule)
            rows.append({"label": genre, "w": w, "genre accuracy": accuracy(classifier, samples, genre),
                         "entropy bits/char": statistics.fmean(map(unigram_entropy, samples)),
                         "loop share": loop_share(samples),
                         "null-label share of this genre": accuracy(classifier, null, genre),
                         "example": " ".join(samples[0][:80].split()).replace("|", "/")})  # fmt: skip
    return {"train_seconds": seconds, "steps": cli.trainer.global_step, "checkpoint": checkpoint,
            "classifier": classifier_rows, "rows": rows, "model": model}  # fmt: skip


def family_alignment(corpus: str | None, label: str | None, train, data_dir: str) -> dict[str, str] | None:
    """The family's shipped alignment (built-in set; rows of training records only; label None, an unlabelled
    model's: the set's first, as proteins.py reads hemopexin's), else a FAMSA alignment of its training sequences;
    None for the built-in set's background (the proteome: no family)."""
    if corpus in DATASETS:
        paths = [p for p in alignment_paths(corpus, data_dir) if label is None or p.stem == label]
        return read_alignment(paths[0], keep={r.id for r in train}) if paths else None
    return align_sequences([r.sequence for r in train]) if len(train) >= 2 else None


def protein_part(size: dict, args, out: Path) -> dict:
    overrides = ["--data.init_args.corpus", args.protein_corpus, "--data.init_args.data_dir", args.data_dir]
    overrides += common.as_arguments(args.protein_option)
    cli, checkpoint, seconds = train("families", overrides, size, args.budget, out)
    model = load_model(checkpoint)
    families = scored_families(model, cli.datamodule, args.protein_corpus, args.data_dir, size["proteins"])
    rows = []
    for label, family in families.items():
        null = family.metrics(model, size, None, 0.0)
        rows += [protein_row(label, w, family.metrics(model, size, label, w, args.schedule), null)
                 for w in args.scales]  # fmt: skip
    return {"train_seconds": seconds, "steps": cli.trainer.global_step, "checkpoint": checkpoint, "rows": rows,
            "model": model}  # fmt: skip


def scored_families(model: TrainedModel, data, corpus: str | None, data_dir: str, count: int) -> dict:
    """label -> Family for every family a model of `data` (a protein data module, set up) is scored on: each label's
    (None: an unlabelled model's one family) training and held-out sequences, its HMM's alignment, and `count`
    lengths drawn from its training sequences that fit the model. The background (no family, no HMM) and a label
    without held-out sequences are trained on, not scored."""
    families = {}
    for label in model.labels.names if model.labels is not None else [None]:
        train_records = [r for r in data.train_records if label is None or r.label == label]
        held_out = [r.sequence for r in data.validation_records if label is None or r.label == label]
        alignment = family_alignment(corpus, label, train_records, data_dir) if held_out else None
        if alignment is None:
            continue
        fits = [len(r.sequence) for r in train_records if len(r.sequence) <= model.length_limit] or [model.length_limit]
        picks = torch.randint(len(fits), (count,), generator=torch.Generator().manual_seed(0)).tolist()
        families[label] = Family(train=[r.sequence for r in train_records], held_out=held_out, alignment=alignment,
                                 lengths=[fits[i] for i in picks])  # fmt: skip
    return families


@dataclass(frozen=True)
class Family:
    """One family's reference sets, its HMM's alignment and the lengths its samples are drawn at."""

    train: list[str]
    held_out: list[str]
    alignment: dict[str, str]
    lengths: list[int]

    def sample(self, model: TrainedModel, settings: SamplingSettings, label: str | None) -> GenerationRun:
        return generate(model, self.lengths, settings=settings, label=label, seed=0)

    def score(self, run: GenerationRun) -> dict:
        """evaluate_proteins of the run's samples against this family."""
        generated = [r.text for r in run.records]
        return evaluate_proteins(generated, self.train, self.held_out, alignment_rows=self.alignment, model=None)

    def metrics(self, model: TrainedModel, size: dict, label: str | None, w: float, schedule: str = "constant") -> dict:
        settings = SamplingSettings(steps=size["protein_steps"], guidance_scale=w, guidance_schedule=schedule)
        return self.score(self.sample(model, settings, label))


def diversity_ratio(result: dict) -> float:
    """The samples' diversity (1 - mean pairwise identity) over the held-out naturals' (of evaluate_proteins)."""
    diversity = result["diversity"]
    natural = 1 - diversity["held_out_mean_pairwise_identity"]
    return (1 - diversity["generated_mean_pairwise_identity"]) / max(natural, 1e-9)


def protein_row(label: str, w: float, result: dict, null: dict) -> dict:
    hmm, null_hmm = result.get("family_hmm", {}), null.get("family_hmm", {})
    identity = result["diversity"]["generated_mean_pairwise_identity"]
    natural = result["diversity"]["held_out_mean_pairwise_identity"]
    return {"label": label, "w": w, "HMM hit": hmm.get("generated"), "null-label HMM hit": null_hmm.get("generated"),
            "held-out HMM hit": hmm.get("held_out"), "median novelty": result["novelty"]["median"],
            "mean pairwise id": identity, "naturals' mean pairwise id": natural,
            "diversity ratio": diversity_ratio(result), "composition JS bits": result["composition"]["js_bits"],
            **common.protein_degeneration(result)}  # fmt: skip


def targets(
    proteins: dict | None, text: dict | None, cost: list[dict], scales: tuple[float, ...] = SCALES
) -> list[dict]:
    found = []
    if proteins is not None:
        rows = [r for r in proteins["rows"] if r["HMM hit"] is not None]
        families = sorted({r["label"] for r in rows})
        at_zero = {r["label"]: r["HMM hit"] for r in rows if r["w"] == 0.0}
        found.append({"target": "every family: HMM hit >= 0.8 at w = 0 with its label (conditional generation)",
                      "met": bool(at_zero) and all(hit >= 0.8 for hit in at_zero.values()),
                      "evidence": ", ".join(f"{f} {at_zero[f]:.2f}" for f in families if f in at_zero)})  # fmt: skip
        best = {f: max((r for r in rows if r["label"] == f), key=lambda r: r["HMM hit"]) for f in families}
        good = {f: any(r["label"] == f and r["HMM hit"] >= 0.95 and r["diversity ratio"] >= 0.8
                       and r["median novelty"] <= 0.9 for r in rows) for f in families}  # fmt: skip
        found.append({"target": "every family: HMM hit >= 0.95 at some w, diversity >= 0.8x naturals', median "
                      "novelty <= 0.9", "met": bool(families) and all(good.values()),
                      "evidence": ", ".join(f"{f} best w={b['w']}: hit {b['HMM hit']:.2f}, diversity "
                                            f"{b['diversity ratio']:.2f}" for f, b in best.items())})  # fmt: skip
    if text is not None:
        by_w = {w: [r for r in text["rows"] if r["w"] == w] for w in scales}
        mean = {w: statistics.fmean(r["genre accuracy"] for r in rows) for w, rows in by_w.items()}
        entropy = {w: statistics.fmean(r["entropy bits/char"] for r in rows) for w, rows in by_w.items()}
        ok = [w for w in scales if w != 0.0 and (mean[w] >= 2 * mean[0.0] or mean[w] >= 0.8)
              and abs(entropy[w] - entropy[0.0]) <= 0.1 * entropy[0.0]]  # fmt: skip
        rising = all(mean[a] <= mean[b] for a, b in zip(scales, scales[1:], strict=False))
        found.append({"target": "text: genre accuracy >= 2x w=0 or >= 0.8, entropy within 10% of w=0", "met": bool(ok),
                      "evidence": " ".join(f"w={w}: {mean[w]:.2f}/{entropy[w]:.2f}b" for w in scales)
                      + f"; rising with w: {rising}"})  # fmt: skip
    if cost:
        worst = max(row["ratio"] for row in cost)
        rule = split_rule(cost)
        measured = "never" if rule is None else f"from {rule} rows"
        found.append({"target": "cost: guided / unguided time < 2x at every batch size (the split rule in code)",
                      "met": worst < 2.0, "evidence": f"worst ratio {worst:.2f}; two calls measured faster "
                      f"{measured}, in code from {SPLIT_FROM_ROWS} rows"})  # fmt: skip
    return found


def guidance_scales(text: str) -> tuple[float, ...]:
    """`--scales 0,1,2` as sorted distinct floats; 0 must be one (targets compare with it), none negative."""
    try:
        scales = tuple(sorted({float(word) for word in text.split(",")}))
    except ValueError:
        raise common.UserInputError(f"--scales {text!r}: expected comma-separated numbers, e.g. 0,1,2") from None
    if 0.0 not in scales or scales[0] < 0:
        raise common.UserInputError(f"--scales {text!r}: give 0 (the unguided baseline) and no negative scale")
    return scales


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--parts", default="proteins,text,cost", help="comma-separated: proteins, text, cost")
    options.add_argument("--budget", type=float, default=None, help="protein model's training seconds")
    options.add_argument("--text-budget", type=float, default=None, help="text model's training seconds")
    options.add_argument("--protein-corpus", default="families", help="labelled FASTA (family=NAME headers) or set")
    options.add_argument("--text-corpus", default="shakespeare", help="text corpus folder or built-in name")
    options.add_argument("--text-labels", default=str(CONFIG_DIR / "shakespeare_genres.csv"),
                         help="CSV of corpus file -> genre")  # fmt: skip
    options.add_argument("--data-dir", default=str(common.REPO / "data"), help="where built-in sets are kept")
    options.add_argument("--protein-option", action="append", default=[], metavar="KEY=VALUE",
                         help="a training option of the protein model, a lever to measure (repeatable), e.g. "
                         "data.init_args.label_balance=1 or model.label_dropout=0.3")  # fmt: skip
    options.add_argument(
        "--schedule",
        default="constant",
        choices=GUIDANCE_SCHEDULES,
        help="how w follows the run (late: the later half only); a trained model is reused",
    )
    options.add_argument("--scales", default=",".join(f"{w:g}" for w in SCALES),
                         help="comma-separated guidance scales w to sample at, 0 among them")  # fmt: skip
    args = options.parse_args(argv)
    args.protein_option = [common.key_value(w, "--protein-option", "data.init_args.label_balance=1")
                           for w in args.protein_option]  # fmt: skip
    args.scales = guidance_scales(args.scales)
    mode = common.mode(args)
    size = SIZES[mode]
    parts = common.choices(args.parts, ("proteins", "text", "cost"), "--parts")
    args.budget = common.positive(size["budget"] if args.budget is None else args.budget, "--budget")
    args.text_budget = common.positive(size["text_budget"] if args.text_budget is None else args.text_budget,
                                       "--text-budget")  # fmt: skip
    if "text" in parts and not Path(args.text_labels).is_file():
        raise common.UserInputError(f"--text-labels {args.text_labels}: file not found")
    out = Path(args.out)
    torch.manual_seed(0)
    proteins = protein_part(size, args, out) if "proteins" in parts else None
    text = text_part(size, args, out) if "text" in parts else None
    for part in (proteins, text):
        if part is not None:
            part.pop("model")
    cost = cost_part(size) if "cost" in parts else []
    found = targets(proteins, text, cost, args.scales)
    payload = {"benchmark": NAME, "mode": mode, "machine": common.machine(), "size": size, "scales": args.scales,
               "schedule": args.schedule,
               "protein options": dict(args.protein_option), "proteins": proteins, "text": text, "cost": cost,
               "split from rows (measured)": split_rule(cost),
               "split from rows (in code)": SPLIT_FROM_ROWS, "targets": found}  # fmt: skip
    tables = {}
    if proteins is not None:
        tables["Proteins: samples per family label and guidance scale w"] = common.markdown_table(
            proteins["rows"], list(proteins["rows"][0])
        )
    if text is not None:
        tables["Text: the genre classifier on held-out works"] = common.markdown_table(
            text["classifier"], list(text["classifier"][0])
        )
        tables["Text: samples per genre label and guidance scale w"] = common.markdown_table(
            text["rows"], list(text["rows"][0])
        )
    if cost:
        tables["Cost: guided (w = 2) / unguided sampling time, two calls vs one"] = common.markdown_table(
            cost, list(cost[0])
        )
    tables["Targets"] = common.markdown_table(found, ["target", "met", "evidence"])
    report = common.write_report(out, NAME, payload, tables)
    print(report.read_text())
    for target in found:
        print(f"target {'met' if target['met'] else 'MISSED'}: {target['target']} ({target['evidence']})")
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
