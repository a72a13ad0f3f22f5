"""Training tokens/s of a pretrained-masked-LM denoiser (ESM-2 through the adapter) against our own denoiser.

The ESM-2 is random, saved with `save_pretrained` and loaded back through `pretrained_denoiser` (the path a user
with a downloaded ESM-2 takes); our Transformer has the same width, depth, heads and MLP ratio. Both train on the
same protein-shaped batches with the same masked-diffusion loss, optimizer and precision. Each configuration runs
in a fresh process. Full size: ESM-2 8M's shape (6 layers, 320 wide, 20 heads).
Command: `python benchmarks/hf_adapter.py [--quick] [--out DIR]`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import common
import torch
from torch import nn

from discrete_diff.batch import Batch, make_batch
from discrete_diff.models.pretrained import PretrainedMaskedLM, pretrained_denoiser
from discrete_diff.models.transformer import Transformer, TransformerConfig
from discrete_diff.objectives import MaskedDiffusion
from discrete_diff.protein.tokenizer import build_protein_tokenizer

NAME = "hf_adapter"
SIZES = {
    "full": {"d_model": 320, "n_layers": 6, "n_heads": 20, "length": 256, "batch": 16, "steps": 10, "repeats": 3},
    "quick": {"d_model": 64, "n_layers": 2, "n_heads": 4, "length": 128, "batch": 16, "steps": 5, "repeats": 3},
    "smoke": {"d_model": 16, "n_layers": 1, "n_heads": 2, "length": 32, "batch": 4, "steps": 1, "repeats": 2},
}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
MODELS = ("ours", "esm2_adapter")


def esm2_denoiser(size: dict, tokenizer) -> nn.Module:
    """A random ESM-2 of this size, through a model directory and the adapter."""
    from transformers import EsmConfig, EsmForMaskedLM

    config = EsmConfig(
        vocab_size=len(tokenizer),
        hidden_size=size["d_model"],
        num_hidden_layers=size["n_layers"],
        num_attention_heads=size["n_heads"],
        intermediate_size=4 * size["d_model"],
        max_position_embeddings=size["length"] + 2,
        position_embedding_type="rotary",
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        hidden_dropout_prob=0.0,  # as in the released ESM-2 configs, and as our denoiser trains
        attention_probs_dropout_prob=0.0,
    )
    with tempfile.TemporaryDirectory() as scratch:  # the weights are in memory once loaded
        directory = Path(scratch) / "esm2"
        EsmForMaskedLM(config).save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        return pretrained_denoiser(PretrainedMaskedLM(str(directory)), tokenizer)


def ours(size: dict, tokenizer) -> nn.Module:
    config = TransformerConfig(
        d_model=size["d_model"], n_layers=size["n_layers"], n_heads=size["n_heads"], max_length=size["length"]
    )
    return Transformer(config, len(tokenizer))


def protein_batch(size: dict, tokenizer) -> Batch:
    """<cls> residues <eos> rows of random canonical residues (ids 4..23 in the ESM-2 order)."""
    ids = torch.randint(4, 24, (size["batch"], size["length"]), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = tokenizer.bos_token_id, tokenizer.eos_token_id
    return make_batch(ids, tokenizer)


def measure(job: dict) -> dict:
    """Seconds per training step over `repeats` timed runs of `steps` steps, after one warm-up step."""
    size, dtype = job["size"], PRECISIONS[job["precision"]]
    tokenizer = build_protein_tokenizer()
    torch.manual_seed(0)
    network = (esm2_denoiser if job["model"] == "esm2_adapter" else ours)(size, tokenizer).train()
    objective = MaskedDiffusion()
    batch = protein_batch(size, tokenizer)
    return common.time_training_steps(network, objective, batch, tokenizer.mask_token_id, dtype, size)


def ratios(rows: list[dict]) -> list[dict]:
    """Adapter / ours training tokens/s per precision: the code path's overhead (1.0 = none)."""
    found = {(r["model"], r["precision"]): r for r in rows}
    out = []
    for precision in sorted({r["precision"] for r in rows}):
        adapter, own = found[("esm2_adapter", precision)], found[("ours", precision)]
        out.append(
            {
                "precision": precision,
                "adapter_vs_ours_tokens_per_sec": adapter["tokens_per_sec"]["mean"] / own["tokens_per_sec"]["mean"],
                "adapter_vs_ours_parameters": adapter["parameters"] / own["parameters"],
            }
        )
    return out


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--precisions", default="fp32,bf16", help="comma-separated, from: fp32, bf16")
    args = options.parse_args(argv)
    if args.worker:
        common.worker_output(measure(json.loads(args.worker)))
        return 0
    precisions = common.parse_precisions(args.precisions, list(PRECISIONS))
    mode = common.mode(args)
    size = SIZES[mode]
    rows = common.training_rows(f"{NAME}.py", list(MODELS), precisions, size, mode, measure)
    payload = {
        "benchmark": NAME,
        "mode": mode,
        "machine": common.machine(),
        "size": size,
        "isolated_processes": mode != "smoke",
        "rows": rows,
        "ratios": ratios(rows),
    }
    tables = {
        "Training throughput (mean ± std over repeats)": common.markdown_table(
            rows, ["model", "precision", "parameters", "step_ms", "tokens_per_sec", "peak_rss_mib"]
        ),
        "ESM-2 through the adapter / our denoiser": common.markdown_table(
            payload["ratios"], ["precision", "adapter_vs_ours_tokens_per_sec", "adapter_vs_ours_parameters"]
        ),
    }
    print(common.write_report(args.out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
