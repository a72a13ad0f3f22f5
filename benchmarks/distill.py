"""Few-step sampling by distillation (SDTT): students at 16 and 8 calls against their teacher at 256, 64, 16 and 8.

Text: the teacher (the default Shakespeare character model) is distilled with the config distill/shakespeare_char
(256 -> 8 steps in 5 rounds); teacher and students sample 256-character blocks with the ancestral sampler, judged
by an independent AR model (bits per character, as benchmarks/sampling.py) with their entropy and the share in a
repetition loop; wall time at batch 1 and batch 64; the wall-clock cost of each round. Proteins: a hemopexin model
distilled with distill/hemopexin (80 -> 10 steps in 3 rounds); the student at 10 calls against the teacher at 100
and at 10: HMM hit rate, novelty, diversity, degeneration (low-complexity and homopolymer fractions, the held-out
naturals' beside them). Targets (printed met or missed): the 8-call student within 3% of the teacher at 256 calls in
judge bits and within 5% in entropy, clearly better than the teacher at 8 calls; the protein student's hit rate at
least the teacher's at 100 calls less 0.02, its diversity no more than 10% lower. `--option KEY=VALUE` sets a lever of
the distillation (e.g. model.divergence=forward-kl, model.optimizer.lr=0.001, trainer.max_steps=6000), recorded in
the report. `--lever NAME:KEY=VALUE[,KEY=VALUE]` adds a student distilled with those settings on top (repeatable):
the levers are measured side by side in one run, against one set of teacher rows.
Command: `python benchmarks/distill.py --teacher C --judge C --protein-teacher C [--option KEY=VALUE ...]
[--lever NAME:KEY=VALUE ...] [--quick] [--out DIR]`.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import common
import sampling as sampling_benchmark
import torch

from discrete_diff.atomic_files import atomic_save_figure
from discrete_diff.commands.distill import DistillCLI
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.generation import choose_lengths, generate
from discrete_diff.inference import load_model
from discrete_diff.protein.alignment import read_alignment
from discrete_diff.protein.builtin_sets import alignment_paths
from discrete_diff.protein_report import evaluate_proteins
from discrete_diff.sampling import SamplingSettings
from discrete_diff.training.distillation import DistillationModule, round_count

NAME = "distill"
SIZES = {
    # max_steps: distillation steps over all rounds; warmup: learning-rate warm-up at the start of every round.
    "full": {"text": {"max_steps": 3000, "warmup": 50, "start": 256, "final": 8, "length": 256, "samples": 64,
                      "repeats": 3},
             "protein": {"max_steps": 1500, "warmup": 50, "start": 80, "final": 10, "generated": 200}},
    "quick": {"text": {"max_steps": 150, "warmup": 5, "start": 256, "final": 8, "length": 128, "samples": 16,
                       "repeats": 2},
              "protein": {"max_steps": 60, "warmup": 5, "start": 80, "final": 10, "generated": 40}},
    "smoke": {"text": {"max_steps": 4, "warmup": 0, "start": 32, "final": 8, "length": 16, "samples": 2, "repeats": 1},
              "protein": {"max_steps": 4, "warmup": 0, "start": 40, "final": 10, "generated": 4}},
}  # fmt: skip
TEACHER_CALLS, STUDENT_CALLS = (256, 64, 16, 8), (16, 8)
PROTEIN_TEACHER_CALLS, PROTEIN_STUDENT_CALLS = (100, 10), 10
BITS_TOLERANCE, ENTROPY_TOLERANCE = 0.03, 0.05
HIT_RATE_SLACK, DIVERSITY_TOLERANCE = 0.02, 0.10
CPU = torch.device("cpu")


def distill(
    config: str, teacher: str, size: dict, out: Path, extra: list[str], options: dict[str, str]
) -> tuple[Path, list[dict], float]:
    """Run `discrete-diff distill` with the config at this size and these options; (checkpoint folder, round rows,
    total seconds). Validation runs once per round, however many rounds the options make."""
    start = int(options.get("model.start_steps", size["start"]))
    final = int(options.get("model.final_steps", size["final"]))
    max_steps = int(options.get("trainer.max_steps", size["max_steps"]))
    rounds = round_count(start, final)
    args = ["--config", f"distill/{config}", "--teacher", teacher]
    args += ["--trainer.logger.init_args.save_dir", str(out / "runs"), "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.max_steps", str(size["max_steps"]), "--trainer.val_check_interval"]
    args += [str(max(1, max_steps // rounds)), "--model.start_steps", str(size["start"])]
    args += ["--model.final_steps", str(size["final"]), "--model.optimizer.warmup_steps", str(size["warmup"]), *extra]
    args += common.as_arguments(options.items())  # after the benchmark's own, so that they win
    cli = build_cli(args, cli_class=DistillCLI, model_class=DistillationModule, prog="discrete-diff distill")
    seconds, _ = common.timed(lambda: fit(cli))
    rows = round_rows(list(cli.model.round_seconds), cli.model.start_steps)
    return Path(cli.trainer.checkpoint_callback.dirpath), rows, seconds


def distillations(args) -> list[tuple[str, dict[str, str]]]:
    """(lever name, options) for every student to distil: the baseline ('', the --option settings) first, then each
    --lever with its settings on top of them."""
    base = dict(args.option)
    return [("", base)] + [(name, {**base, **dict(pairs)}) for name, pairs in args.lever]


def distil_every_student(config: str, teacher: str, size: dict, out: Path, extra: list[str], args) -> list[dict]:
    """The baseline student, then one per --lever: each one's lever, options, checkpoint folder, rounds and time."""
    students = []
    for lever, options in distillations(args):
        folder, rounds, seconds = distill(config, teacher, size, out, extra, options)
        students.append({"lever": lever, "options": options, "students": str(folder), "rounds": rounds,
                         "distillation_seconds": seconds})  # fmt: skip
    return students


def parse_lever(word: str) -> tuple[str, list[tuple[str, str]]]:
    """`NAME:KEY=VALUE[,KEY=VALUE]` as (name, pairs); anything else is a UserInputError naming the word."""
    name, colon, settings = word.partition(":")
    if not colon or not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise common.UserInputError(
            f"--lever {word!r}: expected NAME:KEY=VALUE[,KEY=VALUE] with a NAME of letters, digits, - _ or ., "
            "e.g. forward-kl:model.divergence=forward-kl"
        )
    return name, [
        common.key_value(pair, f"--lever {name}:", "model.optimizer.lr=0.001") for pair in settings.split(",")
    ]


def labelled(sampler: str, lever: str) -> str:
    return f"{sampler} [{lever}]" if lever else sampler


def round_rows(round_seconds: list[float], start: int) -> list[dict]:
    return [
        {"round": r + 1, "teacher steps": start >> r, "student steps": start >> (r + 1), "seconds": s}
        for r, s in enumerate(round_seconds)
    ]


def text_part(args, size: dict, out: Path) -> dict:
    teacher = sampling_benchmark.load(args.teacher, "--teacher", causal=False, device=CPU)
    judge = sampling_benchmark.load(args.judge, "--judge", causal=True, device=CPU)
    if judge.tokenizer.get_vocab() != teacher.tokenizer.get_vocab():
        raise common.UserInputError("--judge: its tokenizer differs from the --teacher checkpoint's")
    measured = {**size, "length": min(size["length"], teacher.length_limit)}
    extra = ["--data.init_args.data_dir", args.data_dir, "--data.init_args.max_length", str(teacher.max_length)]
    extra += ["--data.init_args.corpus", args.corpus] if args.corpus else []
    extra += ["--trainer.precision", "32-true"] if args.smoke else []
    students = distil_every_student("shakespeare_char", args.teacher, size, out, extra, args)
    rows = []
    for who, lever, model, calls in [("teacher", "", teacher, TEACHER_CALLS)] + [
        ("student", s["lever"], load_model(Path(s["students"]) / f"student-{n}-steps.ckpt"), (n,))
        for s in students
        for n in STUDENT_CALLS
        if (Path(s["students"]) / f"student-{n}-steps.ckpt").is_file()  # fewer rounds (a lever) skip some counts
    ]:
        for steps in calls:
            sample = sampling_benchmark.diffusion_sampler(model, "ancestral", steps)
            row = sampling_benchmark.measure(labelled(f"{who}@{steps}", lever), sample, judge, measured, CPU)
            rows.append({**row, "model": who, "lever": lever, "steps": steps})
            print(f"{row['sampler']}: {row['judge_bits_per_character']['mean']:.3f} bits/char", file=sys.stderr)
    targets = [t for s in students for t in text_targets(rows, s["lever"])]
    return {"size": measured, "rows": rows, **students[0], "levers": students[1:], "targets": targets}


def text_targets(rows: list[dict], lever: str = "") -> list[dict]:
    find = {r["sampler"]: r for r in rows}
    best, baseline, student = find["teacher@256"], find["teacher@8"], find[labelled("student@8", lever)]
    bits, entropy = (lambda r: r["judge_bits_per_character"]), (lambda r: r["entropy_bits"]["mean"])
    gap = bits(baseline)["mean"] - bits(student)["mean"]
    error = math.sqrt(sum(bits(r)["std"] ** 2 / bits(r)["n"] for r in (baseline, student)))
    name = labelled("student@8", lever)
    return [
        target(f"{name} judge bits / teacher@256", bits(student)["mean"] / bits(best)["mean"], 1 + BITS_TOLERANCE),
        target(
            f"{name} entropy, relative gap to teacher@256",
            abs(entropy(student) - entropy(best)) / entropy(best),
            ENTROPY_TOLERANCE,
        ),
        {
            "target": f"{name} beats teacher@8 (bits lower by > 2 standard errors)",
            "value": gap,
            "threshold": 2 * error,
            "met": gap > 2 * error,
        },  # fmt: skip
    ]


def target(name: str, value: float, threshold: float, at_least: bool = False) -> dict:
    return {"target": name, "value": value, "threshold": threshold,
            "met": value >= threshold if at_least else value <= threshold}  # fmt: skip


def protein_part(args, size: dict, out: Path) -> dict:
    extra = ["--data.init_args.data_dir", args.data_dir]
    extra += ["--trainer.precision", "32-true"] if args.smoke else []
    students = distil_every_student("hemopexin", args.protein_teacher, size, out, extra, args)
    first = load_model(Path(students[0]["students"]) / f"student-{PROTEIN_STUDENT_CALLS}-steps.ckpt")
    data = common.trained_data(first.data["datamodule"], args.data_dir)
    train_ids = {r.id for r in data.train_records}
    rows_hmm = read_alignment(alignment_paths("hemopexin", args.data_dir)[0], keep=train_ids)
    train, held_out = [r.sequence for r in data.train_records], [r.sequence for r in data.validation_records]
    teacher = load_model(args.protein_teacher)
    rows = []
    for who, lever, model, steps in [("teacher", "", teacher, n) for n in PROTEIN_TEACHER_CALLS] + [
        ("student", s["lever"], load_model(Path(s["students"]) / f"student-{PROTEIN_STUDENT_CALLS}-steps.ckpt"),
         PROTEIN_STUDENT_CALLS)
        for s in students
    ]:  # fmt: skip
        lengths = choose_lengths(model, size["generated"], None, torch.Generator().manual_seed(0))
        settings = SamplingSettings(steps=steps)
        started = time.perf_counter()
        generated = [r.text for r in generate(model, lengths, settings=settings, seed=0, batch_size=64).records]
        seconds_taken = time.perf_counter() - started
        metrics = evaluate_proteins(generated, train, held_out, alignment_rows=rows_hmm)
        identity = metrics["diversity"]["generated_mean_pairwise_identity"]
        rows.append({"sampler": labelled(f"{who}@{steps}", lever), "model": who, "lever": lever, "steps": steps,
                     "HMM hit rate": metrics["family_hmm"]["generated"], "median novelty": metrics["novelty"]["median"],
                     "mean pairwise identity": identity, "diversity (1 - identity)": 1.0 - identity,
                     "composition JS bits": metrics["composition"]["js_bits"],
                     **common.protein_degeneration(metrics), "seconds": seconds_taken})  # fmt: skip
    find = {r["sampler"]: r for r in rows}
    best = find[f"teacher@{PROTEIN_TEACHER_CALLS[0]}"]
    targets = []
    for s in students:
        name = labelled(f"student@{PROTEIN_STUDENT_CALLS}", s["lever"])
        targets += [
            target(f"{name} HMM hit rate (>= teacher@100 - 0.02)", find[name]["HMM hit rate"],
                   best["HMM hit rate"] - HIT_RATE_SLACK, at_least=True),
            target(f"{name} diversity (>= 0.9 x teacher@100's)", find[name]["diversity (1 - identity)"],
                   (1 - DIVERSITY_TOLERANCE) * best["diversity (1 - identity)"], at_least=True),
        ]  # fmt: skip
    return {"rows": rows, **students[0], "levers": students[1:], "targets": targets}


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    lines = dict.fromkeys((r["model"], r["lever"]) for r in rows)
    for (who, lever), marker in zip(lines, "os^vD<>px*", strict=False):
        own = sorted((r for r in rows if (r["model"], r["lever"]) == (who, lever)), key=lambda r: r["steps"])
        axis.plot([r["steps"] for r in own], [r["judge_bits_per_character"]["mean"] for r in own], marker=marker,
                  label=labelled(who, lever))  # fmt: skip
    axis.set(xscale="log", xlabel="sampler steps (network calls at most)", ylabel="judge bits/char (lower is better)")
    axis.legend()
    figure.tight_layout()
    atomic_save_figure(figure, path)


def lever_rows(result: dict, part: str) -> list[dict]:
    """One row per distilled student (the baseline, then each lever): its settings, time and headline numbers."""
    find = {r["sampler"]: r for r in result["rows"]}
    rows = []
    for s in [result, *result["levers"]]:
        row = {"lever": s["lever"] or "baseline", "options": ", ".join(f"{k}={v}" for k, v in s["options"].items()),
               "distillation seconds": s["distillation_seconds"]}  # fmt: skip
        if part == "text":
            for n in STUDENT_CALLS:
                student = find.get(labelled(f"student@{n}", s["lever"]))
                row[f"student@{n} judge bits"] = student["judge_bits_per_character"] if student else None
            student = find[labelled("student@8", s["lever"])]
            row["student@8 entropy"] = student["entropy_bits"]
            best = find["teacher@256"]["judge_bits_per_character"]["mean"]
            row["student@8 / teacher@256"] = student["judge_bits_per_character"]["mean"] / best
        else:
            student = find[labelled(f"student@{PROTEIN_STUDENT_CALLS}", s["lever"])]
            row.update({k: student[k] for k in ("HMM hit rate", "diversity (1 - identity)", "low-complexity gen")})
        rows.append(row)
    return rows


def markdown_tables(results: dict, targets: list[dict]) -> dict[str, str]:
    tables = {}
    if "text" in results:
        text = results["text"]
        columns = ["sampler", "network_calls", "judge_bits_per_character", "entropy_bits", "loop_share",
                   "batch_1_seconds", f"batch_{text['size']['samples']}_seconds"]  # fmt: skip
        title = f"Text: {text['size']['length']}-character samples (mean ± std over samples / repeats)"
        tables[title] = common.markdown_table(text["rows"], columns)
    if "proteins" in results:
        rows = results["proteins"]["rows"]
        tables["Proteins (hemopexin)"] = common.markdown_table(rows, [c for c in rows[0] if c != "model"])
    for part, result in results.items():
        if result["levers"]:
            rows = lever_rows(result, part)
            tables[f"{part.capitalize()}: the levers side by side"] = common.markdown_table(rows, list(rows[0]))
        rounds = [{"lever": s["lever"] or "baseline", **r} for s in [result, *result["levers"]] for r in s["rounds"]]
        tables[f"{part.capitalize()}: distillation rounds (wall-clock seconds)"] = common.markdown_table(
            rounds, list(rounds[0])
        )
    tables["Targets"] = common.markdown_table(targets, ["target", "value", "threshold", "met"])
    return tables


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--teacher", default=None, help="the text teacher: a diffusion checkpoint (the default model)")
    options.add_argument("--judge", default=None, help="an AR checkpoint judging the text samples")
    options.add_argument("--protein-teacher", default=None, help="a hemopexin diffusion checkpoint")
    options.add_argument("--parts", default="text,proteins", help="comma-separated: text, proteins")
    options.add_argument("--corpus", default=None, help="text corpus (default: the distill config's, shakespeare)")
    options.add_argument("--data-dir", default=str(common.REPO / "data"), help="where built-in sets are kept")
    options.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="a setting for every student, e.g. model.divergence=forward-kl (repeatable)")  # fmt: skip
    options.add_argument(
        "--lever",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="one more student with these settings, measured beside the baseline (repeatable)",
    )
    args = options.parse_args(argv)
    args.option = [common.key_value(word, "--option", "model.divergence=forward-kl") for word in args.option]
    args.lever = [parse_lever(word) for word in args.lever]
    names = [name for name, _ in args.lever]
    if len(set(names)) < len(names):
        raise common.UserInputError(
            f"--lever: the name {next(n for n in names if names.count(n) > 1)!r} is given twice"
        )
    mode = common.mode(args)
    parts = common.choices(args.parts, ("text", "proteins"), "--parts")
    for part, needed in (("text", ("teacher", "judge")), ("proteins", ("protein_teacher",))):
        missing = [f"--{name.replace('_', '-')}" for name in needed if part in parts and not getattr(args, name)]
        if missing:
            raise common.UserInputError(f"{missing[0]}: needed for the {part} part (or leave it out: --parts)")
    out = Path(args.out)
    torch.manual_seed(0)
    results = {}
    if "text" in parts:
        results["text"] = text_part(args, SIZES[mode]["text"], out)
        plot(results["text"]["rows"], out / f"{NAME}.png")
    if "proteins" in parts:
        results["proteins"] = protein_part(args, SIZES[mode]["protein"], out)
    payload = {"benchmark": NAME, "mode": mode, "machine": common.machine(), "sizes": SIZES[mode],
               "checkpoints": {"teacher": args.teacher, "judge": args.judge, "protein_teacher": args.protein_teacher},
               "options": dict(args.option), "levers": {name: dict(pairs) for name, pairs in args.lever},
               **results}  # fmt: skip
    targets = [t for part in results.values() for t in part["targets"]]
    report = common.write_report(out, NAME, payload, markdown_tables(results, targets))
    print(report.read_text())
    for t in targets:
        verdict = "met" if t["met"] else "MISSED"
        print(f"target {verdict}: {t['target']}: {t['value']:.4g} (threshold {t['threshold']:.4g})")
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
