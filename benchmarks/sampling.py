"""Sampling speed at a given quality: every diffusion sampler at several step counts against the AR baseline.

Quality is judged by an independent autoregressive model (exact bits per character of the samples) together with the
samples' entropy and the share of them caught in a repetition loop (discrete_diff.text.degeneration); speed is wall
time at batch 1 and at batch N, and sequential network calls. The AR baseline decodes with a key-value cache. A
block-diffusion checkpoint is sampled block by block with its own key-value cache, each strategy at several steps per
block; `--long-samples N` also writes N samples of `--long-length` characters (past the training length) with their
judge bits to long_samples.md. Runs unchanged on a GPU with `--device cuda`.
Command: `python benchmarks/sampling.py --diffusion C --ar C --judge C [--quick] [--out DIR] [--device cuda]`.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from pathlib import Path

import common
import torch
from torch import Tensor

from discrete_diff.atomic_files import atomic_save_figure, atomic_write_text
from discrete_diff.batch import make_batch
from discrete_diff.inference import TrainedModel, load_model
from discrete_diff.objectives import Autoregressive, Decoding
from discrete_diff.sampling import STRATEGIES, BanTokens, run_sampler
from discrete_diff.sampling.autoregressive import generate_autoregressive
from discrete_diff.sampling.block_diffusion import generate_blocks
from discrete_diff.text.degeneration import in_loop, loop_share

NAME = "sampling"
SIZES = {
    # block_steps: steps per block for a block-diffusion checkpoint (capped at its block size);
    # long_length: characters of each --long-samples sample.
    "full": {"length": 256, "steps": [16, 32, 64, 128, 256], "block_steps": [1, 2, 4, 8, 16], "samples": 64,
             "repeats": 3, "long_length": 2000},
    "quick": {"length": 128, "steps": [16, 64, 128], "block_steps": [2, 4, 8], "samples": 16, "repeats": 2,
              "long_length": 500},
    "smoke": {"length": 16, "steps": [8], "block_steps": [2], "samples": 2, "repeats": 2, "long_length": 40},
}  # fmt: skip
TOLERANCE = 0.05  # judge bits and entropy within 5% of the AR baseline's own samples


def load(path: str, option: str, causal: bool, device: torch.device) -> TrainedModel:
    model = load_model(path)
    if (model.objective.decoding is Decoding.LEFT_TO_RIGHT) != causal:
        wanted = "an autoregressive (causal)" if causal else "a diffusion (bidirectional)"
        raise common.UserInputError(f"{option} {path}: not {wanted} checkpoint")
    model.network.to(device)
    return model


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def diffusion_sampler(model: TrainedModel, strategy: str, steps: int):
    filters = [BanTokens(model.domain.banned_ids(document_breaks=True))]

    def sample(batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, int]:
        tokens = torch.full((batch, length), model.mask_id, dtype=torch.long, device=generator.device)
        result = run_sampler(
            model.network,
            tokens,
            mask_id=model.mask_id,
            strategy=STRATEGIES[strategy](),
            num_steps=steps,
            schedule=model.objective.schedule,
            filters=filters,
            generator=generator,
        )
        return result.tokens, result.network_calls

    return sample


def block_sampler(model: TrainedModel, strategy: str, steps: int):
    """Blocks left to right with the model's key-value cache, `steps` per block, no stop at [EOS]."""
    filters = [BanTokens(model.domain.banned_ids(document_breaks=True))]
    objective = model.objective

    def sample(batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, int]:
        prompt = torch.zeros((batch, 0), dtype=torch.long, device=generator.device)
        result = generate_blocks(
            model.network, prompt, length, block_size=objective.block_size, window=model.max_length,
            mask_id=model.mask_id, strategy=STRATEGIES[strategy](), steps_per_block=steps,
            schedule=objective.schedule, filters=filters, generator=generator,
        )  # fmt: skip
        return result.tokens, result.network_calls

    return sample


def ar_sampler(model: TrainedModel):
    filters = [BanTokens(model.domain.banned_ids(document_breaks=True))]

    def sample(batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, int]:
        start = torch.full((batch, 1), model.mask_id, dtype=torch.long, device=generator.device)  # the start symbol
        result = generate_autoregressive(model.network, start, length, filters=filters, generator=generator)
        return result.tokens, result.network_calls

    return sample


def entropy_bits(tokens: Tensor) -> float:
    """Unigram entropy of one sample's tokens, in bits (repetitive, collapsed samples score low)."""
    counts = Counter(tokens.tolist())
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def judge_bits(judge: TrainedModel, tokens: Tensor) -> list[float]:
    """Per-sample bits per character of the judge's exact NLL; characters counted in the decoded text.

    Samples longer than the judge's window are scored in windows that advance by half of it: each window scores
    its second half with the first half as context (the first window scores all of its tokens).
    """
    window = judge.max_length
    nats = torch.zeros(tokens.shape[0], dtype=torch.float64, device=tokens.device)
    start = 0
    while True:
        piece = tokens[:, start : start + window]
        batch = make_batch(piece, judge.tokenizer)
        with torch.no_grad():
            token_nll = Autoregressive().token_nll(judge.network, batch, judge.mask_id)  # (B, W)
        first = 0 if start == 0 else window // 2
        nats += token_nll[:, first:].double().sum(-1)
        if start + window >= tokens.shape[1]:
            break
        start += window // 2
    texts = judge.tokenizer.batch_decode(tokens.tolist(), skip_special_tokens=True)
    return [n / math.log(2) / max(len(text), 1) for n, text in zip(nats.tolist(), texts, strict=True)]


def measure(label: str, sample, judge: TrainedModel, size: dict, device: torch.device) -> dict:
    """Batch-N samples (timed once, judged) and batch-1 wall time over `repeats` samples."""
    sample(1, size["length"], torch.Generator(device=device).manual_seed(1))  # warm-up: first calls pay set-up
    generator = torch.Generator(device=device).manual_seed(0)
    synchronize(device)
    start = time.perf_counter()
    tokens, calls = sample(size["samples"], size["length"], generator)
    synchronize(device)
    batch_seconds = time.perf_counter() - start
    single = []
    for _ in range(size["repeats"]):
        start = time.perf_counter()
        sample(1, size["length"], generator)
        synchronize(device)
        single.append(time.perf_counter() - start)
    tokens = tokens.cpu()
    bits = judge_bits(judge, tokens.to(device))
    texts = judge.tokenizer.batch_decode(tokens.tolist(), skip_special_tokens=True)
    return {
        "sampler": label,
        "network_calls": calls,
        "judge_bits_per_character": common.spread(bits),
        "entropy_bits": common.spread([entropy_bits(row) for row in tokens]),
        "loop_share": loop_share(texts),
        "batch_1_seconds": common.spread(single),
        f"batch_{size['samples']}_seconds": batch_seconds,
        "example": texts[0][:120],
    }


def long_samples(model: TrainedModel, judge: TrainedModel, count: int, length: int, device: torch.device) -> dict:
    """`count` samples of `length` tokens from a block model (ancestral, one step per token), with judge bits."""
    steps = model.objective.block_size
    sample = block_sampler(model, "ancestral", steps)
    start = time.perf_counter()
    tokens, calls = sample(count, length, torch.Generator(device=device).manual_seed(0))
    seconds = time.perf_counter() - start
    tokens = tokens.cpu()
    bits = judge_bits(judge, tokens.to(device))
    texts = [judge.tokenizer.decode(row.tolist(), skip_special_tokens=True) for row in tokens]
    return {
        "length": length,
        "sampler": f"ancestral@{steps}/block",
        "network_calls": calls,
        "seconds": seconds,
        "samples": [
            {"judge_bits_per_character": b, "entropy_bits": entropy_bits(row), "in_loop": in_loop(text), "text": text}
            for b, row, text in zip(bits, tokens, texts, strict=True)
        ],
    }


def long_samples_markdown(result: dict) -> str:
    lines = [
        f"# {len(result['samples'])} samples of {result['length']} tokens",
        "",
        f"Sampler: {result['sampler']}, {result['network_calls']} network calls for the batch, "
        f"{result['seconds']:.1f} s.",
    ]
    for number, sample in enumerate(result["samples"]):
        lines += [
            "",
            f"## Sample {number + 1}: judge {sample['judge_bits_per_character']:.3f} bits/char, "
            f"entropy {sample['entropy_bits']:.2f} bits{', in a repetition loop' if sample['in_loop'] else ''}",
            "",
            "```text",
            sample["text"],
            "```",
        ]
    return "\n".join(lines) + "\n"


def matches(row: dict, reference: dict) -> bool:
    bits, ref_bits = row["judge_bits_per_character"]["mean"], reference["judge_bits_per_character"]["mean"]
    entropy, ref_entropy = row["entropy_bits"]["mean"], reference["entropy_bits"]["mean"]
    return bits <= (1 + TOLERANCE) * ref_bits and abs(entropy - ref_entropy) <= TOLERANCE * ref_entropy


def plot(rows: list[dict], reference: dict, batch_key: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4))
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        own = sorted((r for r in rows if r["strategy"] == strategy), key=lambda r: r["network_calls"])
        bits = [r["judge_bits_per_character"]["mean"] for r in own]
        axes[0].plot([r["network_calls"] for r in own], bits, marker="o", label=strategy)
        axes[1].plot([r[batch_key] for r in own], bits, marker="o", label=strategy)
    ref_bits = reference["judge_bits_per_character"]["mean"]
    axes[0].plot([reference["network_calls"]], [ref_bits], "k*", markersize=12, label="AR + KV cache")
    axes[1].plot([reference[batch_key]], [ref_bits], "k*", markersize=12, label="AR + KV cache")
    for axis, xlabel in zip(
        axes, ("sequential network calls", f"wall time, {batch_key.replace('_', ' ')}"), strict=True
    ):
        axis.axhline((1 + TOLERANCE) * ref_bits, color="grey", linestyle="--", linewidth=1)
        axis.set(xscale="log", xlabel=xlabel, ylabel="judge bits/char (lower is better)")
        axis.legend(fontsize=8)
    figure.tight_layout()
    atomic_save_figure(figure, path)


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--diffusion", required=True, help="a diffusion checkpoint")
    options.add_argument("--ar", required=True, help="the autoregressive baseline's checkpoint")
    options.add_argument("--judge", required=True, help="an AR checkpoint other than --ar (e.g. another seed)")
    options.add_argument("--device", default="cpu", help="cpu or cuda")
    options.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated names")
    options.add_argument(
        "--long-samples", type=int, default=0, help="block-diffusion --diffusion: write this many long samples"
    )
    options.add_argument("--long-length", type=int, default=None, help="tokens per long sample (full size: 2000)")
    args = options.parse_args(argv)
    mode = common.mode(args)
    size = dict(SIZES[mode])
    if args.device not in ("cpu", "cuda") or (args.device == "cuda" and not torch.cuda.is_available()):
        raise common.UserInputError(f"--device {args.device}: not available here (cpu, or cuda on a GPU machine)")
    unknown = [s for s in args.strategies.split(",") if s not in STRATEGIES]
    if unknown:
        raise common.UserInputError(f"--strategies: unknown {unknown}; choose from {', '.join(STRATEGIES)}")
    device = torch.device(args.device)
    diffusion = load(args.diffusion, "--diffusion", causal=False, device=device)
    blocks = diffusion.objective.decoding is Decoding.BLOCKS
    if args.long_samples < 0 or (args.long_samples and not blocks):
        raise common.UserInputError("--long-samples: needs a block-diffusion --diffusion checkpoint and a count >= 0")
    ar = load(args.ar, "--ar", causal=True, device=device)
    judge = load(args.judge, "--judge", causal=True, device=device)
    for option, model in (("--ar", ar), ("--judge", judge)):
        if model.tokenizer.get_vocab() != diffusion.tokenizer.get_vocab():
            raise common.UserInputError(f"{option}: its tokenizer differs from the --diffusion checkpoint's")
    longest = min(getattr(getattr(m.network, "config", None), "max_length", size["length"]) for m in (diffusion, ar))
    size["length"] = min(size["length"], longest)
    batch_key, speedup_key = f"batch_{size['samples']}_seconds", f"speedup_batch_{size['samples']}"
    reference = {**measure("ar+kv-cache", ar_sampler(ar), judge, size, device), "strategy": "ar", "steps": None}
    rows = []
    grid = [n for n in size["block_steps"] if n <= diffusion.objective.block_size] if blocks else size["steps"]
    for strategy in args.strategies.split(","):
        # A strategy that ignores the step count (first-hitting) draws the same samples at every count: once.
        counts = grid if STRATEGIES[strategy]().follows_num_steps else grid[-1:]
        for steps in counts:
            if blocks:
                label, sampler = f"{strategy}@{steps}/block", block_sampler(diffusion, strategy, steps)
            else:
                label, sampler = f"{strategy}@{steps}", diffusion_sampler(diffusion, strategy, steps)
            row = measure(label, sampler, judge, size, device)
            row.update(strategy=strategy, steps=steps, matches_ar=matches(row, reference))
            row["speedup_batch_1"] = reference["batch_1_seconds"]["mean"] / row["batch_1_seconds"]["mean"]
            row[speedup_key] = reference[batch_key] / row[batch_key]
            rows.append(row)
            print(f"{row['sampler']}: {row['network_calls']} calls", file=sys.stderr)
    matched = [r for r in rows if r["matches_ar"]]
    best = min(matched, key=lambda r: r["network_calls"]) if matched else None
    summary = {
        "fewest_calls_matching_ar": best["network_calls"] if best else None,
        "sampler_at_fewest_calls": best["sampler"] if best else None,
        "speedup_batch_1_there": best["speedup_batch_1"] if best else None,
        f"{speedup_key}_there": best[speedup_key] if best else None,
        "target_calls_at_most_64": bool(best) and best["network_calls"] <= 64,
        "ar_network_calls": reference["network_calls"],
        # Block diffusion's target: at AR quality, faster than AR at batch 1 and no slower at batch N.
        "faster_batch_1_and_no_slower_batch_n_at_ar_quality": [
            r["sampler"] for r in matched if r["speedup_batch_1"] > 1 and r[speedup_key] >= 1
        ],
    }
    plot(rows, reference, batch_key, Path(args.out) / f"{NAME}.png")
    long = None
    if args.long_samples:
        length = int(common.positive(args.long_length or size["long_length"], "--long-length"))
        long = long_samples(diffusion, judge, args.long_samples, length, device)
        atomic_write_text(Path(args.out) / "long_samples.md", long_samples_markdown(long))
    payload = {
        "benchmark": NAME,
        "mode": mode,
        "machine": common.machine(),
        "device": args.device,
        "size": size,
        "checkpoints": {"diffusion": args.diffusion, "ar": args.ar, "judge": args.judge},
        "judge_is_ar_baseline": Path(args.judge).resolve() == Path(args.ar).resolve(),
        "block_size": diffusion.objective.block_size if blocks else None,
        "long_samples": long,
        "reference": reference,
        "rows": rows,
        "summary": summary,
    }
    columns = [
        "sampler",
        "network_calls",
        "judge_bits_per_character",
        "entropy_bits",
        "loop_share",
        "batch_1_seconds",
        batch_key,
        "matches_ar",
        "speedup_batch_1",
        speedup_key,
    ]
    tables = {
        f"{size['length']}-token samples (mean ± std over samples / repeats)": common.markdown_table(
            [reference, *rows], columns
        ),
        "Fewest calls at AR quality (target <= 64; AR needs one call per token)": common.markdown_table(
            [summary], list(summary)
        ),
    }
    print(common.write_report(args.out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
