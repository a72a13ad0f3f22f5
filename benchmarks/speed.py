"""Is diffusion still slow? One table of quality against time for every way this package samples, on one model.

The default model and its AR twin, one AR judge, samples of 256 characters: the AR model with its key-value cache;
ancestral sampling at 8..256 steps, and at few steps with a temperature; adaptive parallel decoding (`threshold`) at
several thresholds; semi-autoregressive decoding (`spans`, blocks of 32) with threshold and confidence decoding
inside each block, with no cache and with each approximate cache (prefix, dual, dKV;
`discrete_diff.sampling.bidirectional_cache`); dKV without spans; optionally a block-diffusion checkpoint with its own
key-value cache (`--blocks`) and distilled students (`--students`, each at its own step count). For each: network
calls, seconds at batch 1 and batch N, tokens per second, judge bits/char, entropy, the share of samples in a
repetition loop and, for a cache, the share of positions it ran. The quality rule: judge bits within 5% of the same
diffusion model's ancestral samples at the most steps (256, no temperature; a student is held to its teacher's, the
--diffusion model's); speed-ups are against AR + KV cache, in this run. `speed.png`: judge bits against seconds at
batch 1 and at batch N. Measurements reuse benchmarks/sampling.py's (`measure`, `judge_bits`).
Command: `python benchmarks/speed.py --diffusion C --ar C --judge C [--blocks C] [--students C1,C2] [--quick]`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import common
import torch
from sampling import ar_sampler, block_sampler, load, measure
from torch import Tensor

from discrete_diff.atomic_files import atomic_save_figure
from discrete_diff.inference import TrainedModel
from discrete_diff.objectives import Decoding
from discrete_diff.sampling import (
    Ancestral,
    BanTokens,
    ConfidenceUnmasking,
    Spans,
    Strategy,
    Temperature,
    ThresholdUnmasking,
    run_sampler,
)
from discrete_diff.sampling.bidirectional_cache import CACHE_KINDS, cached_denoiser

NAME = "speed"
SIZES = {
    # span: positions per block of semi-autoregressive decoding; confidence_steps: calls of confidence decoding
    # over the whole sample (spread over the blocks); dkv_refresh: calls between the dKV cache's full refreshes;
    # block_steps: steps per block of a --blocks checkpoint.
    "full": {"length": 256, "samples": 64, "repeats": 3, "steps": [8, 12, 16, 20, 24, 32, 64, 128, 256],
             "temperatures": [0.9, 0.8], "temperature_steps": [8, 16],
             "thresholds": [0.05, 0.1, 0.2, 0.3, 0.5, 0.9], "cache_thresholds": [0.1, 0.9], "span": 32,
             "confidence_steps": 64, "dkv_refresh": 8, "block_steps": [1, 2, 4, 8]},
    "quick": {"length": 128, "samples": 16, "repeats": 2, "steps": [8, 32, 128], "temperatures": [0.9],
              "temperature_steps": [8], "thresholds": [0.1, 0.5],
              "cache_thresholds": [0.1], "span": 32, "confidence_steps": 32, "dkv_refresh": 8, "block_steps": [2, 8]},
    "smoke": {"length": 16, "samples": 2, "repeats": 2, "steps": [4, 8], "temperatures": [0.5],
              "temperature_steps": [4], "thresholds": [0.9],
              "cache_thresholds": [0.9], "span": 8, "confidence_steps": 4, "dkv_refresh": 2, "block_steps": [2]},
}  # fmt: skip
TOLERANCE = 0.05  # judge bits within 5% of the same model's ancestral samples at the most steps
TEMPERED = "ancestral + temperature"  # a group that never sets the quality reference: it trades entropy for bits
# Temperatures at few steps: a sharper law per call trades entropy for judge bits where few calls lose quality.
# Thresholds reach low: the default (character) model is rarely sure of a character, so at 0.3 a 128-character
# sample still took 111 calls of 128 (measured), and only low thresholds reveal many per call.


@dataclass(frozen=True)
class Setting:
    """One row to measure: `group` is its series in the figure; `base` names the uncached row a cache is
    compared with."""

    label: str
    group: str
    sample: Callable[[int, int, torch.Generator], tuple[Tensor, int]]
    model: str
    cache: str | None = None
    base: str | None = None
    shares: dict | None = None


def loop_sampler(model: TrainedModel, strategy: Strategy, steps: int, cache: str | None, refresh: int | None,
                 shares: dict, temperature: float | None = None) -> Callable:  # fmt: skip
    """The sampling loop over blank rows, with `cache` (or none) and a temperature (or none); records the share of
    positions run per batch."""
    filters: list = [BanTokens(model.domain.banned_ids(document_breaks=True))]
    filters += [Temperature(temperature)] if temperature is not None else []

    def sample(batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, int]:
        tokens = torch.full((batch, length), model.mask_id, dtype=torch.long, device=generator.device)
        network = model.network
        if cache is not None:
            network = cached_denoiser(network, cache, model.mask_id, strategy, refresh)
        result = run_sampler(
            network, tokens, mask_id=model.mask_id, strategy=strategy, num_steps=steps,
            schedule=model.objective.schedule, filters=filters, generator=generator,
        )  # fmt: skip
        shares[batch] = network.share_run if cache is not None else 1.0
        return result.tokens, result.network_calls

    return sample


def diffusion_settings(model: TrainedModel, size: dict) -> list[Setting]:
    """Ancestral at each step count, threshold at each threshold, spans with each cache, dKV without spans."""

    def row(label, group, strategy, steps, cache=None, base=None, temperature=None) -> Setting:
        shares: dict = {}
        refresh = size["dkv_refresh"] if cache == "dkv" else None
        sample = loop_sampler(model, strategy, steps, cache, refresh, shares, temperature)
        return Setting(label, group, sample, "diffusion", cache, base, shares)

    length, span = size["length"], size["span"]
    rows = [row(f"ancestral@{n}", "ancestral", Ancestral(), n) for n in size["steps"]]
    rows += [row(f"ancestral@{n} + temperature {t}", TEMPERED, Ancestral(), n, temperature=t)
             for t in size["temperatures"] for n in size["temperature_steps"]]  # fmt: skip
    rows += [row(f"threshold {t}", "threshold", ThresholdUnmasking(t), length) for t in size["thresholds"]]
    inner: list[tuple[str, Strategy, int]] = [(f"threshold {t}", ThresholdUnmasking(t), length)
                                               for t in size["cache_thresholds"]]  # fmt: skip
    steps = size["confidence_steps"]
    inner.append((f"confidence@{steps}", ConfidenceUnmasking(), steps))
    for name, strategy, count in inner:
        base = f"spans {span} + {name}"
        rows.append(row(base, "spans", Spans(strategy, span_length=span), count))
        for cache in CACHE_KINDS:
            rows.append(row(f"{base} + {cache}", f"spans + {cache}", Spans(strategy, span), count, cache, base))
    labels = {r.label for r in rows}
    for name, strategy, count in inner:
        if name not in labels:  # the uncached twin of a dKV row without spans (confidence decoding)
            rows.append(row(name, "confidence", strategy, count))
        rows.append(row(f"{name} + dkv", "dkv", strategy, count, "dkv", name))
    return rows


def block_settings(model: TrainedModel, size: dict) -> list[Setting]:
    """A block-diffusion checkpoint with its key-value cache: ancestral at each step count per block (capped at its
    block size), and threshold decoding inside each block."""
    steps = sorted({min(n, model.objective.block_size) for n in size["block_steps"]})
    rows = [Setting(f"blocks: ancestral@{n}/block", "block diffusion", block_sampler(model, "ancestral", n), "blocks")
            for n in steps]  # fmt: skip
    rows.append(Setting("blocks: threshold 0.9", "block diffusion", block_sampler(model, "threshold", 1), "blocks"))
    return rows


def student_settings(students: list[TrainedModel], paths: list[str]) -> list[Setting]:
    """Each student with ancestral sampling at its own step count (a distilled model records it)."""
    rows = []
    for number, (model, path) in enumerate(zip(students, paths, strict=True)):
        steps = model.default_settings().steps
        sample = loop_sampler(model, Ancestral(), steps, None, None, {})
        rows.append(Setting(f"student {number + 1}@{steps} ({Path(path).name})", "students", sample, "diffusion"))
    return rows


def quality_reference(rows: list[dict], model: str) -> dict:
    """The model's ancestral row at the most steps (for block diffusion: the most steps per block), no temperature."""
    plain = (r for r in rows if r["group"] != TEMPERED)
    own = [r for r in plain if r["model"] == model and "ancestral@" in r["sampler"]]
    return max(own, key=lambda r: r["network_calls"])


def add_comparisons(rows: list[dict], reference: dict, batch_key: str) -> None:
    """Speed-ups against AR + KV cache, the quality rule, and each cache's effect against its uncached twin."""
    size_n = batch_key.removeprefix("batch_").removesuffix("_seconds")
    by_label = {r["sampler"]: r for r in rows}
    for model in dict.fromkeys(r["model"] for r in rows):
        ref_bits = quality_reference(rows, model)["judge_bits_per_character"]["mean"]
        for row in (r for r in rows if r["model"] == model):
            row["quality_reference_bits"] = ref_bits
            row["within_5_percent"] = row["judge_bits_per_character"]["mean"] <= (1 + TOLERANCE) * ref_bits
    for row in rows:
        row["speedup_batch_1"] = reference["batch_1_seconds"]["mean"] / row["batch_1_seconds"]["mean"]
        row[f"speedup_batch_{size_n}"] = reference[batch_key] / row[batch_key]
        base = by_label.get(row["base"]) if row["base"] else None
        if base is not None:
            row["cache_speedup_batch_1"] = base["batch_1_seconds"]["mean"] / row["batch_1_seconds"]["mean"]
            row[f"cache_speedup_batch_{size_n}"] = base[batch_key] / row[batch_key]
            row["cache_bits_change"] = (
                row["judge_bits_per_character"]["mean"] - base["judge_bits_per_character"]["mean"]
            )


def fastest(rows: list[dict], key: str) -> dict | None:
    passing = [r for r in rows if r["within_5_percent"]]
    return max(passing, key=lambda r: r[key]) if passing else None


def plot(rows: list[dict], reference: dict, batch_key: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for axis, key, title in zip(axes, ("batch_1_seconds", batch_key), ("1", batch_key.split("_")[1]),
                                strict=True):  # fmt: skip
        for group in dict.fromkeys(r["group"] for r in rows):
            own = sorted((r for r in rows if r["group"] == group), key=lambda r: _seconds(r[key]))
            axis.plot([_seconds(r[key]) for r in own], [r["judge_bits_per_character"]["mean"] for r in own],
                      marker="o", label=group)  # fmt: skip
        axis.plot([_seconds(reference[key])], [reference["judge_bits_per_character"]["mean"]], "k*", markersize=12,
                  label="AR + KV cache")  # fmt: skip
        limit = quality_reference(rows, "diffusion")["quality_reference_bits"] * (1 + TOLERANCE)
        axis.axhline(limit, color="grey", linestyle="--", linewidth=1)
        axis.set(xscale="log", xlabel=f"seconds, batch {title}", ylabel="judge bits/char (lower is better)")
        axis.legend(fontsize=7)
    figure.tight_layout()
    atomic_save_figure(figure, path)


def _seconds(value: dict | float) -> float:
    return value["mean"] if isinstance(value, dict) else value


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--diffusion", required=True, help="a masked-diffusion checkpoint (the default run's)")
    options.add_argument("--ar", required=True, help="its AR twin (the same data and size)")
    options.add_argument("--judge", required=True, help="an AR checkpoint other than --ar (e.g. another seed)")
    options.add_argument("--blocks", default=None, help="a block-diffusion checkpoint, sampled with its cache")
    options.add_argument("--students", default="", help="comma-separated distilled checkpoints of --diffusion")
    options.add_argument("--device", default="cpu", help="cpu or cuda")
    args = options.parse_args(argv)
    mode = common.mode(args)
    size = dict(SIZES[mode])
    if args.device not in ("cpu", "cuda") or (args.device == "cuda" and not torch.cuda.is_available()):
        raise common.UserInputError(f"--device {args.device}: not available here (cpu, or cuda on a GPU machine)")
    device = torch.device(args.device)
    diffusion = load(args.diffusion, "--diffusion", causal=False, device=device)
    if diffusion.objective.decoding is not Decoding.WINDOW:
        raise common.UserInputError(f"--diffusion {args.diffusion}: not a masked-diffusion checkpoint (see --blocks)")
    ar = load(args.ar, "--ar", causal=True, device=device)
    judge = load(args.judge, "--judge", causal=True, device=device)
    blocks = load(args.blocks, "--blocks", causal=False, device=device) if args.blocks else None
    if blocks is not None and blocks.objective.decoding is not Decoding.BLOCKS:
        raise common.UserInputError(f"--blocks {args.blocks}: not a block-diffusion checkpoint")
    student_paths = [p for p in args.students.split(",") if p]
    students = [load(p, "--students", causal=False, device=device) for p in student_paths]
    others = [("--ar", ar), ("--judge", judge), ("--blocks", blocks), *[("--students", m) for m in students]]
    for option, model in others:
        if model is not None and model.tokenizer.get_vocab() != diffusion.tokenizer.get_vocab():
            raise common.UserInputError(f"{option}: its tokenizer differs from the --diffusion checkpoint's")
    size["length"] = min(size["length"], diffusion.max_length, ar.max_length)
    batch_key = f"batch_{size['samples']}_seconds"
    reference = measure("ar+kv-cache", ar_sampler(ar), judge, size, device)
    settings = diffusion_settings(diffusion, size)
    settings += block_settings(blocks, size) if blocks is not None else []
    settings += student_settings(students, student_paths)
    rows = []
    for setting in settings:
        row = measure(setting.label, setting.sample, judge, size, device)
        row.update(group=setting.group, model=setting.model, cache=setting.cache, base=setting.base)
        row["positions_run_share"] = setting.shares.get(size["samples"]) if setting.shares else None
        row["tokens_per_second_batch_1"] = size["length"] / row["batch_1_seconds"]["mean"]
        row[f"tokens_per_second_batch_{size['samples']}"] = size["length"] * size["samples"] / row[batch_key]
        rows.append(row)
        print(f"{setting.label}: {row['network_calls']} calls", file=sys.stderr)
    add_comparisons(rows, reference, batch_key)
    speedup_n = f"speedup_batch_{size['samples']}"
    best_1, best_n = fastest(rows, "speedup_batch_1"), fastest(rows, speedup_n)
    summary = {
        "quality_reference": quality_reference(rows, "diffusion")["sampler"],
        "fastest_within_5_percent_batch_1": best_1["sampler"] if best_1 else None,
        "its_speedup_batch_1": best_1["speedup_batch_1"] if best_1 else None,
        f"fastest_within_5_percent_batch_{size['samples']}": best_n["sampler"] if best_n else None,
        f"its_{speedup_n}": best_n[speedup_n] if best_n else None,
        "target_3x_batch_1_met": bool(best_1) and best_1["speedup_batch_1"] >= 3,
        f"target_1x_batch_{size['samples']}_met": bool(best_n) and best_n[speedup_n] >= 1,
    }
    plot(rows, reference, batch_key, Path(args.out) / f"{NAME}.png")
    payload = {
        "benchmark": NAME,
        "mode": mode,
        "machine": common.machine(),
        "device": args.device,
        "size": size,
        "checkpoints": {
            "diffusion": args.diffusion,
            "ar": args.ar,
            "judge": args.judge,
            "blocks": args.blocks,
            "students": student_paths,
        },
        "reference": reference,
        "rows": rows,
        "summary": summary,
    }
    n = size["samples"]
    columns = ["sampler", "network_calls", "judge_bits_per_character", "entropy_bits", "loop_share",
               "batch_1_seconds", batch_key, "tokens_per_second_batch_1", f"tokens_per_second_batch_{n}",
               "positions_run_share", "within_5_percent", "speedup_batch_1", speedup_n]  # fmt: skip
    cache_columns = ["sampler", "base", "positions_run_share", "cache_speedup_batch_1", f"cache_speedup_batch_{n}",
                     "cache_bits_change", "within_5_percent"]  # fmt: skip
    tables = {
        f"{size['length']}-character samples (mean ± std over samples / repeats); speed-ups against AR + KV cache": (
            common.markdown_table([reference, *rows], columns)
        ),
        "Each cache against the same sampler without it": common.markdown_table(
            [r for r in rows if r["cache"]], cache_columns
        ),
        "The fastest settings within 5% of the diffusion model's own ancestral quality": common.markdown_table(
            [summary], list(summary)
        ),
    }
    print(common.write_report(args.out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
