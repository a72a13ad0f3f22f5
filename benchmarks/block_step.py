"""Training step time of block diffusion against masked diffusion, at equal batch and length, per attention path.

A block-diffusion step runs [x_t ; x_0] (twice the length) through the block-causal pattern. Rows: masked diffusion
(the default config's network, batch and length), block diffusion with blocks of 4, 8, 16 through the query-chunk
kernel (`attention_kernels.BlockChunks`, what training uses) and through the dense (2L, 2L) mask (the path it
replaced) and, rows ending -flex, through compiled FlexAttention (`attention_kernels.FlexBlock`; the report says
whether it compiled here, else those rows ran the chunks), at each precision asked for; bd3-4-k2 and bd3-4-k4 score
k maskings of each sequence in one pass over [x_t^1 ; ... ; x_t^k ; x_0] (`maskings_per_sequence`), the clean stream
computed once. Equal batch means the same number of scored noisy rows per step: every model scores `batch` masked
rows of `length`, so a k-copy model reads batch / k sequences, and its ratio is step time per scored masking
relative to masked diffusion's. The models are timed in one process, interleaved repeat by repeat; the ratios divide
medians by masked diffusion's at the same precision, measured in the same run.
With `--evaluation` the rows time the loss's forward pass without gradients instead (the bound's evaluation; where
FlexAttention runs forward but has no backward, as on CPU).
Command: `python benchmarks/block_step.py [--quick] [--evaluation] [--precisions fp32,bf16] [--models M,...]
[--device cuda]`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import common
import torch
from torch import nn

from discrete_diff.attention_kernels import flex_compiles
from discrete_diff.batch import Batch
from discrete_diff.denoiser import AttentionPattern, BlockCausal, Explicit
from discrete_diff.models.transformer import Transformer, TransformerConfig
from discrete_diff.objectives import BlockDiffusion, MaskedDiffusion
from discrete_diff.training.optimizer import OptimizerConfig, build_optimizer

NAME = "block_step"
VOCAB = 89  # Shakespeare's 84 characters plus the 5 special tokens
SIZES = {
    # The default config's network and batch (the packaged shakespeare_char config).
    "full": {"d_model": 128, "n_layers": 4, "n_heads": 4, "length": 256, "batch": 16, "steps": 3, "repeats": 7},
    "quick": {"d_model": 64, "n_layers": 2, "n_heads": 4, "length": 128, "batch": 8, "steps": 3, "repeats": 2},
    "smoke": {"d_model": 32, "n_layers": 1, "n_heads": 2, "length": 32, "batch": 4, "steps": 1, "repeats": 1},
}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
BASELINE = "mdlm"
TARGET = 2.0
"""Most block / masked-diffusion step time for blocks of 4, 8 and 16 (chunks or flex)."""


class DenseBlockDiffusion(BlockDiffusion):
    """Block diffusion through one dense block-causal mask: the reference the chunked kernel replaced."""

    def attention(self, padding: torch.Tensor, length: int, copies: int = 1) -> AttentionPattern:
        structure = BlockCausal(self.block_size, copies=copies).structure((copies + 1) * length, padding.device)
        return Explicit(structure, padding)


def maskings(model: str) -> int:
    """k of a model named ...-kK (noisy copies per sequence), else 1."""
    return int(model.rsplit("-k", 1)[1]) if "-k" in model else 1


def kernel(model: str) -> str:
    return "dense mask" if model.startswith("bd3-dense") else "flex" if model.endswith("-flex") else "chunks"


def make_objective(model: str):
    if model == BASELINE:
        return MaskedDiffusion()
    kind, size = model.removesuffix("-flex").removesuffix(f"-k{maskings(model)}").rsplit("-", 1)
    if kind == "bd3-dense":
        return DenseBlockDiffusion(block_size=int(size))
    flex = "flex" if kernel(model) == "flex" else "chunks"
    return BlockDiffusion(block_size=int(size), maskings_per_sequence=maskings(model), attention_kernel=flex)


MODELS = ("mdlm", "bd3-4", "bd3-8", "bd3-16", "bd3-4-k2", "bd3-4-k4", "bd3-4-flex", "bd3-8-flex", "bd3-16-flex")
MODELS += ("bd3-dense-4", "bd3-dense-8", "bd3-dense-16")


def stepper(
    model: str, size: dict, dtype: torch.dtype | None, device: torch.device, evaluation: bool = False
) -> Callable[[], None]:
    """One full training step (forward, backward, clipping, AdamW) of `model` on a fixed random batch of `batch`
    scored rows: batch / k sequences for a model masking each k times; with `evaluation`, the loss's forward pass
    alone, without gradients (what the bound's evaluation runs)."""
    torch.manual_seed(0)
    config = TransformerConfig(
        d_model=size["d_model"], n_layers=size["n_layers"], n_heads=size["n_heads"], max_length=size["length"]
    )
    network, objective = Transformer(config, VOCAB).to(device).train(not evaluation), make_objective(model)
    optimizer, _ = build_optimizer(network, OptimizerConfig(), total_steps=1000)
    sequences = size["batch"] // maskings(model)
    ids = torch.randint(0, VOCAB - 5, (sequences, size["length"]), generator=torch.Generator().manual_seed(0))
    ids = ids.to(device)
    ones = torch.ones_like(ids, dtype=torch.bool)
    batch = Batch(ids, ones, ones)

    def forward() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            objective.loss(network, batch, VOCAB - 1)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = objective.loss(network, batch, VOCAB - 1).value
        loss.backward()
        nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return forward if evaluation else step


def measure(
    models: list[str], precision: str, size: dict, device: torch.device, evaluation: bool = False
) -> list[dict]:
    """Seconds per step of every model, interleaved: each repeat times `steps` steps of each model in turn, so a
    burst of load elsewhere on the machine falls on every model alike rather than on one row."""
    dtype = PRECISIONS[precision]
    steps = {model: stepper(model, size, dtype, device, evaluation) for model in models}
    for step in steps.values():
        step()  # warm-up
    seconds: dict[str, list[float]] = {model: [] for model in models}
    for _ in range(size["repeats"]):
        for model, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            for _ in range(size["steps"]):
                step()
            synchronize(device)
            seconds[model].append((time.perf_counter() - start) / size["steps"])
    tokens = size["batch"] * size["length"]
    return [
        {
            "model": model,
            "precision": precision,
            "sequences": size["batch"] // maskings(model),
            "step_ms": common.spread([1000 * s for s in seconds[model]]),
            "median_step_ms": 1000 * statistics.median(seconds[model]),
            "tokens_per_sec": common.spread([tokens / s for s in seconds[model]]),
        }
        for model in models
    ]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def ratios(rows: list[dict]) -> list[dict]:
    """Each row's step time over masked diffusion's at the same precision (mean and fastest repeats)."""
    base = {r["precision"]: r for r in rows if r["model"] == BASELINE}
    out = []
    for row in rows:
        if row["model"] == BASELINE or row["precision"] not in base:
            continue
        reference = base[row["precision"]]
        ratio = row["median_step_ms"] / reference["median_step_ms"]
        chunked = kernel(row["model"]) != "dense mask"
        out.append(
            {
                "model": row["model"],
                "precision": row["precision"],
                "kernel": kernel(row["model"]),
                "maskings_per_sequence": maskings(row["model"]),
                "step_ratio_to_mdlm": ratio,
                "fastest_repeats_ratio": row["step_ms"]["min"] / reference["step_ms"]["min"],
                "target_met": ratio <= TARGET if chunked else None,
            }
        )
    return out


def precision_ratios(rows: list[dict]) -> list[dict]:
    """bf16 / fp32 step time of each model measured at both."""
    found = {(r["model"], r["precision"]): r for r in rows}
    return [
        {
            "model": m,
            "bf16_over_fp32_step_time": found[(m, "bf16")]["step_ms"]["mean"] / found[(m, "fp32")]["step_ms"]["mean"],
        }
        for m in dict.fromkeys(r["model"] for r in rows)
        if (m, "bf16") in found and (m, "fp32") in found
    ]


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--precisions", default="fp32", help="comma-separated, from: fp32, bf16")
    options.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from: {', '.join(MODELS)}")
    options.add_argument(
        "--evaluation", action="store_true", help="time the loss's forward pass without gradients, not a step"
    )
    options.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine (the same ratios there)")
    args = options.parse_args(argv)
    precisions = common.parse_precisions(args.precisions, list(PRECISIONS))
    models = common.choices(args.models, MODELS, "--models")
    if BASELINE not in models:
        models.insert(0, BASELINE)
    mode = common.mode(args)
    size = SIZES[mode]
    if args.device not in ("cpu", "cuda") or (args.device == "cuda" and not torch.cuda.is_available()):
        raise common.UserInputError(f"--device {args.device}: choose cpu, or cuda on a machine with a CUDA GPU")
    device = torch.device(args.device)
    rows = [row for precision in precisions for row in measure(models, precision, size, device, args.evaluation)]
    payload = {"benchmark": NAME, "mode": mode, "machine": common.machine(), "size": size, "device": args.device}
    payload["timed"] = "evaluation forward pass" if args.evaluation else "training step"
    if any(kernel(m) == "flex" for m in models):
        payload["flex_compiles"] = flex_compiles(device.type, not args.evaluation)
    payload["rows"] = rows
    payload |= {"ratios": ratios(rows), "precision_ratios": precision_ratios(rows)}
    tables = {
        f"{payload['timed'].capitalize()} (median; mean ± std over interleaved repeats)": common.markdown_table(
            rows, ["model", "precision", "sequences", "median_step_ms", "step_ms", "tokens_per_sec"]
        ),
        f"Step time / masked diffusion's (target for the chunked kernel: <= {TARGET})": common.markdown_table(
            payload["ratios"],
            ["model", "precision", "kernel", "maskings_per_sequence", "step_ratio_to_mdlm", "fastest_repeats_ratio"]
            + ["target_met"],
        ),
    }
    if payload["precision_ratios"]:
        tables["bf16 autocast / fp32 step time"] = common.markdown_table(
            payload["precision_ratios"], ["model", "bf16_over_fp32_step_time"]
        )
    print(common.write_report(args.out, NAME, payload, tables).read_text())
    if "flex_compiles" in payload:
        print(f"FlexAttention compiled here: {payload['flex_compiles']} (if not, the -flex rows ran the chunks)")
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
