"""Sampling that does not degenerate: every sampling lever on a trained protein model, against the naturals.

For each family the checkpoint is scored on (its recorded data: a built-in set such as hemopexin or the labelled
`families`, or a FASTA file; each label of a labelled model but the background) and each setting of the levers (the
ancestral sampler, the library's default strategy; fewer steps; temperature; top-p; the repetition penalty; ReMDM
remasking; the confidence order; threshold decoding; the exact first-hitting sampler; classifier-free guidance
towards the family's label, for a labelled model), N proteins at the family's training lengths: the low-complexity
and homopolymer fractions beside the held-out naturals' and their ratio, the family profile HMM's hit rate, median
identity to the nearest training sequence (novelty), diversity (1 - mean pairwise identity) over the naturals',
seconds and network calls. Each row is marked against the targets for generated proteins (low-complexity within 1.5x
of the naturals', HMM hit >= 0.9, novelty <= 0.6, diversity >= 0.8x); the best setting meets the most targets on
every family, then has the lowest low-complexity ratio. First-hitting draws exactly from the model, so its row tells
whether degeneration comes from the model or from the sampler.
Command: `python benchmarks/protein_sampling.py --checkpoint C [--families A,B] [--levers ...] [--quick | --smoke]
[--out DIR]` (full: 64 proteins per setting at 128 steps, hours for three families; the estimate for the given model
is printed first).
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

import common
import torch
from guidance import Family, diversity_ratio, scored_families

from discrete_diff.commands.checkpoint_argument import checkpoint_path
from discrete_diff.inference import TrainedModel, load_model
from discrete_diff.objectives import Decoding
from discrete_diff.sampling import (
    CONFIDENCES,
    ConfidenceUnmasking,
    FirstHitting,
    Remasking,
    SamplingSettings,
    ThresholdUnmasking,
)

NAME = "protein_sampling"
SIZES = {
    # proteins: samples per (family, setting), one batch at full size; steps: the baseline's (full: half the library's
    # default of 256, as 17 settings per family take hours; first-hitting and threshold make one call per residue).
    "full": {"proteins": 64, "steps": 128},
    "quick": {"proteins": 8, "steps": 16},
    "smoke": {"proteins": 4, "steps": 4},
}
TEMPERATURES, TOP_PS, PENALTIES, ETAS, THRESHOLDS = (0.8, 0.9, 1.1), (0.9, 0.95), (1.1, 1.3), (0.05, 0.1), (0.9, 0.7)
GUIDANCE_SCALES = (1.0, 2.0)  # where guidance raised every family's hit rate (benchmarks/README.md "Guidance")
LEVERS = ("steps", "temperature", "top-p", "repetition-penalty", "remasking", "confidence", "threshold",
          "first-hitting", "guidance")  # fmt: skip
"""What --levers chooses from; the baseline (the default ancestral sampler) always runs. `guidance` (classifier-free,
constant schedule) needs a labelled model: the default list leaves it out for an unlabelled one."""
LOW_COMPLEXITY, HMM_HIT, NOVELTY, DIVERSITY = 1.5, 0.9, 0.6, 0.8  # the targets for generated proteins
TARGETS = ("low-complexity <= 1.5x", "HMM hit >= 0.9", "novelty <= 0.6", "diversity >= 0.8x")


def grid(steps: int, levers: list[str]) -> list[tuple[str, str, SamplingSettings]]:
    """(lever, setting, settings) of every row: the baseline first, every other setting a change of it."""
    base = SamplingSettings(steps=steps)
    few = max(steps // 4, 1)
    confidence = {name: ConfidenceUnmasking(confidence=CONFIDENCES[name]()) for name in CONFIDENCES}
    settings = {
        "steps": [(f"ancestral, {few} steps", replace(base, steps=few))],
        "temperature": [(f"temperature {t}", replace(base, temperature=t)) for t in TEMPERATURES],
        "top-p": [(f"top-p {p}", replace(base, top_p=p)) for p in TOP_PS],
        "repetition-penalty": [(f"repetition penalty {r}", replace(base, repetition_penalty=r)) for r in PENALTIES],
        "remasking": [(f"remasking eta {eta}", replace(base, strategy=Remasking(eta=eta))) for eta in ETAS],
        "confidence": [(f"confidence {name}", replace(base, strategy=c)) for name, c in confidence.items()],
        "threshold": [(f"threshold {t}", replace(base, strategy=ThresholdUnmasking(threshold=t))) for t in THRESHOLDS],
        "first-hitting": [("first-hitting (exact)", replace(base, strategy=FirstHitting()))],
        "guidance": [(f"guidance {w:g}", replace(base, guidance_scale=w)) for w in GUIDANCE_SCALES],
    }
    rows = [("baseline", f"ancestral, {steps} steps", base)]
    return rows + [(lever, name, value) for lever in levers for name, value in settings[lever]]


def passes(settings: SamplingSettings, lengths: list[int]) -> int:
    """Network calls per batch a setting makes at most: its steps, or one per residue of the longest sample."""
    return settings.steps if settings.strategy.follows_num_steps else max(lengths)


def estimate(model: TrainedModel, families: dict, chosen: list, size: dict) -> str:
    """Sampling time of the run: one timed call over each family's samples, times the calls its settings make."""
    seconds = 0.0
    for label, family in families.items():
        one_call = partial(family.sample, model, SamplingSettings(steps=1), label)
        one_call()  # warm-up: first calls pay for allocation
        call, _ = common.timed(one_call)
        seconds += call * sum(passes(settings, family.lengths) for _, _, settings in chosen)
    return (f"~{seconds / 60:.1f} min of sampling (at most; metrics apart): {len(chosen)} settings x "
            f"{len(families)} families x {size['proteins']} proteins")  # fmt: skip


def ratio(generated: float, natural: float) -> float | None:
    """generated / natural; 1 where both are 0, None (no finite ratio) where only the naturals' is."""
    if natural > 0:
        return generated / natural
    return 1.0 if generated == 0 else None


def marks(row: dict) -> dict[str, bool]:
    """Which targets a row meets, read from its own values."""
    met = (row["low-complexity gen"] <= LOW_COMPLEXITY * row["low-complexity held-out"], row["HMM hit"] >= HMM_HIT,
           row["median novelty"] <= NOVELTY, row["diversity ratio"] >= DIVERSITY)  # fmt: skip
    return {target: bool(value) for target, value in zip(TARGETS, met, strict=True)}  # numpy's bools are not JSON


def with_marks(row: dict) -> dict:
    """The row with each degeneration ratio after the naturals' value, then its target marks."""
    ordered = {}
    for key, value in row.items():
        ordered[key] = value
        if key.endswith(" held-out"):
            kind = key.removesuffix(" held-out")
            ordered[f"{kind} ratio"] = ratio(row[f"{kind} gen"], value)
    met = marks(ordered)
    return {**ordered, **met, "targets met": sum(met.values())}


def sample_row(family: str, lever: str, setting: str, result: dict, seconds: float, calls: int) -> dict:
    return with_marks({"family": family, "lever": lever, "setting": setting, **common.protein_degeneration(result),
                       "HMM hit": result["family_hmm"]["generated"], "median novelty": result["novelty"]["median"],
                       "diversity ratio": diversity_ratio(result), "seconds": seconds,
                       "network calls": calls})  # fmt: skip


def naturals_row(family: str, result: dict) -> dict:
    """The held-out naturals scored as if they were samples (their own degeneration, HMM hit rate and novelty)."""
    low, runs = result["low_complexity_fraction"]["held_out"], result["homopolymer_fraction"]["held_out"]
    return with_marks({"family": family, "lever": "naturals", "setting": "held-out naturals",
                       "low-complexity gen": low, "low-complexity held-out": low, "homopolymer gen": runs,
                       "homopolymer held-out": runs, "HMM hit": result["family_hmm"]["held_out"],
                       "median novelty": result["held_out_novelty"]["median"], "diversity ratio": 1.0,
                       "seconds": None, "network calls": None})  # fmt: skip


def sweep(model: TrainedModel, families: dict[str | None, Family], chosen: list, names: dict) -> list[dict]:
    """The naturals' row, then one row per setting, for each family (shown by its name in `names`)."""
    rows = []
    for label, family in families.items():
        shown = names[label]
        for index, (lever, setting, settings) in enumerate(chosen):
            seconds, run = common.timed(partial(family.sample, model, settings, label))
            result = family.score(run)
            if index == 0:
                rows.append(naturals_row(shown, result))
            rows.append(sample_row(shown, lever, setting, result, seconds, run.network_calls))
            print(f"{shown} {setting}: low-complexity {result['low_complexity_fraction']['generated']:.3f}, "
                  f"{seconds:.1f} s", file=sys.stderr)  # fmt: skip
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per setting: each target met on every family, how many, the worst low-complexity ratio, seconds and calls."""
    found = []
    for setting in dict.fromkeys(r["setting"] for r in rows if r["lever"] != "naturals"):
        own = [r for r in rows if r["setting"] == setting]
        met = {target: all(r[target] for r in own) for target in TARGETS}
        ratios = [r["low-complexity ratio"] for r in own]
        found.append({"setting": setting, "lever": own[0]["lever"], **met, "targets met": sum(met.values()),
                      "worst low-complexity ratio": None if None in ratios else max(ratios),
                      "seconds": sum(r["seconds"] for r in own),
                      "network calls": sum(r["network calls"] for r in own)})  # fmt: skip
    return found


def best(settings: list[dict]) -> dict:
    """The most targets met, then the lowest low-complexity ratio (none: last); ties go to the earlier setting."""
    worst = [math.inf if s["worst low-complexity ratio"] is None else s["worst low-complexity ratio"] for s in settings]
    return settings[min(range(len(settings)), key=lambda i: (-settings[i]["targets met"], worst[i]))]


def cause(settings: list[dict]) -> str:
    """Model or sampler: the exact first-hitting samples against the baseline's, on the low-complexity target."""
    by_lever = {s["lever"]: s for s in settings}
    exact, base, target = by_lever.get("first-hitting"), by_lever["baseline"], TARGETS[0]
    if exact is None:
        return "not measured: add first-hitting to --levers (exact samples from the model tell)"
    said = "; ".join(f"{s['setting']}: {times(s['worst low-complexity ratio'])} the naturals' low-complexity "
                     "fraction" for s in (exact, base))  # fmt: skip
    if not exact[target]:
        return f"the model: even exact samples from it miss the 1.5x target ({said})"
    if not base[target]:
        return f"the sampler: exact samples from the model meet the 1.5x target and the baseline's miss it ({said})"
    return f"neither: exact and baseline samples both meet the 1.5x target ({said})"


def times(value: float | None) -> str:
    return "some, against none in" if value is None else f"{value:.2f}x"


def load(path: str) -> TrainedModel:
    model = load_model(checkpoint_path(path))
    if model.domain.name != "protein" or model.objective.decoding is not Decoding.WINDOW:
        raise common.UserInputError(f"--checkpoint {path}: not a masked-diffusion protein model")
    if model.data.get("datamodule") is None:
        raise common.UserInputError(f"--checkpoint {path}: records no training data to score its samples against")
    return model


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--checkpoint", required=True, help="a trained protein model: .ckpt, run folder or export")
    options.add_argument("--families", default=None, help="labels to score (default: every family the data has)")
    options.add_argument("--levers", default=",".join(LEVERS), help=f"comma-separated, from: {', '.join(LEVERS)}")
    options.add_argument("--data-dir", default=str(common.REPO / "data"), help="where built-in sets are kept")
    args = options.parse_args(argv)
    mode = common.mode(args)
    size = SIZES[mode]
    levers = common.choices(args.levers, LEVERS, "--levers")
    model = load(args.checkpoint)
    if "guidance" in levers and model.labels is None:
        if args.levers != options.get_default("levers"):
            raise common.UserInputError(f"--levers guidance: {args.checkpoint} has no labels to guide towards")
        levers.remove("guidance")
    chosen = grid(size["steps"], levers)
    data = common.trained_data(model.data["datamodule"], args.data_dir)
    families = scored_families(model, data, data.corpus, args.data_dir, size["proteins"])
    names = {label: label or Path(data.corpus).stem for label in families}  # an unlabelled model: its set's name
    if args.families is not None:
        wanted = common.choices(args.families, list(names.values()), "--families")
        families = {label: family for label, family in families.items() if names[label] in wanted}
    if not families:
        raise common.UserInputError(f"--checkpoint {args.checkpoint}: its data has no family to score (no alignment)")
    duration = estimate(model, families, chosen, size)
    print(f"this run: {duration}", file=sys.stderr)
    torch.manual_seed(0)
    rows = sweep(model, families, chosen, names)
    settings = summary(rows)
    chosen_best, verdict = best(settings), cause(settings)
    payload = {"benchmark": NAME, "mode": mode, "machine": common.machine(), "size": size,
               "checkpoint": args.checkpoint, "families": [names[label] for label in families], "estimate": duration,
               "targets": {"low_complexity_ratio_at_most": LOW_COMPLEXITY, "hmm_hit_at_least": HMM_HIT,
                           "median_novelty_at_most": NOVELTY, "diversity_ratio_at_least": DIVERSITY},
               "rows": rows, "settings": settings, "best": chosen_best, "cause": verdict}  # fmt: skip
    tables = {
        f"Samples: {size['proteins']} proteins per family and setting, the held-out naturals first":
            common.markdown_table(rows, list(rows[0])),
        "Settings: a target counts where it is met on every family": common.markdown_table(settings, list(settings[0])),
        "Best setting (most targets met, then the lowest low-complexity ratio)":
            f"{chosen_best['setting']}: {chosen_best['targets met']} of {len(TARGETS)} targets met.",
        "Model or sampler? (first-hitting draws exactly from the model)": f"The cause: {verdict}.",
    }  # fmt: skip
    report = common.write_report(args.out, NAME, payload, tables)
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
