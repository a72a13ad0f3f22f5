"""How costs grow: training step time and memory against sequence length, and tokenizing/loading against corpus size.

Every measurement runs in a fresh process, so each peak resident memory is that configuration's own. The
corpora are generated text (words drawn from a fixed random vocabulary), written to a scratch folder and
deleted afterwards. Target: peak memory of data loading flat (within 1.5x) from 5 MB to 500 MB.
Command: `python benchmarks/scaling.py [--quick] [--out DIR]`.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np

NAME = "scaling"
SIZES = {
    "full": {"network": {"d_model": 256, "n_layers": 4, "n_heads": 4}, "lengths": [128, 256, 512, 1024, 2048],
             "tokens_per_batch": 8192, "steps": 5, "repeats": 3, "megabytes": [5, 50, 500]},
    "quick": {"network": {"d_model": 64, "n_layers": 2, "n_heads": 2}, "lengths": [128, 256, 512],
              "tokens_per_batch": 2048, "steps": 3, "repeats": 3, "megabytes": [2, 10, 20]},
    "smoke": {"network": {"d_model": 16, "n_layers": 1, "n_heads": 2}, "lengths": [16, 32],
              "tokens_per_batch": 64, "steps": 1, "repeats": 2, "megabytes": [0.1, 0.3]},
}  # fmt: skip
DOCUMENT_MB = 4  # the generated corpus is split into documents of about this size (validation = whole documents)
FLAT = 1.5


def write_corpus(folder: Path, megabytes: float, seed: int = 0) -> int:
    """Pseudo-text of ~megabytes in several .txt documents, generated in 1 MB pieces; returns bytes written."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=rng.integers(1, 9))) for _ in range(5000)]
    total, target = 0, int(megabytes * 2**20)
    documents = max(2, round(megabytes / DOCUMENT_MB))
    per_document = target // documents
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(documents):
        with open(folder / f"doc_{index:04d}.txt", "w", encoding="utf-8") as handle:
            written = 0
            while written < per_document:
                remaining = min(per_document - written, 2**20)
                piece = " ".join(rng.choice(words, size=remaining // 4 + 1))[: remaining - 1]
                lines = "\n".join(piece[i : i + 72] for i in range(0, len(piece), 72)) + "\n"
                handle.write(lines)
                written += len(lines)
            total += written
    return total


def data_module(job: dict):
    from discrete_diff.text.datamodule import TextDataModule
    from discrete_diff.text.tokenizers import CharacterTokenizer

    module = TextDataModule(
        corpus=job["corpus"], tokenizer=CharacterTokenizer(), block_length=256, batch_size=32, cache_dir=job["cache"]
    )
    module.prepare_data()  # tokenizes into the cache on the first call
    module.setup("fit")
    return module


def tokenize(job: dict) -> dict:
    start = time.perf_counter()
    module = data_module(job)
    return {"seconds": time.perf_counter() - start, "tokens": int(module.tokens.shape[0])}


def load(job: dict) -> dict:
    """Open the cached corpus and read `batches` training batches, `repeats` times."""
    seconds = []
    for _ in range(job["repeats"]):
        start = time.perf_counter()
        loader = data_module(job).train_dataloader()
        for _ in itertools.islice(loader, job["batches"]):
            pass
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds}


def step(job: dict) -> dict:
    import throughput

    return throughput.measure(job)


WORKERS = {"tokenize": tokenize, "load": load, "step": step}


def measure(job: dict, isolated: bool) -> dict:
    if isolated:
        return common.run_isolated(f"{NAME}.py", job)
    return {**WORKERS[job["kind"]](job), "peak_rss_mib": common.peak_rss_mib()}


def sequence_rows(size: dict, isolated: bool) -> list[dict]:
    rows = []
    for length in size["lengths"]:
        batch = max(1, size["tokens_per_batch"] // length)
        shape = {
            **size["network"],
            "length": length,
            "batch": batch,
            "steps": size["steps"],
            "repeats": size["repeats"],
        }
        job = {"kind": "step", "model": "diffusion", "precision": "bf16", "size": shape}
        result = measure(job, isolated)
        rows.append(
            {
                "length": length,
                "batch": batch,
                "step_ms": common.spread([1000 * s for s in result["step_seconds"]]),
                "tokens_per_sec": common.spread([batch * length / s for s in result["step_seconds"]]),
                "peak_rss_mib": result["peak_rss_mib"],
            }
        )
        print(f"length {length}: {common.show(rows[-1]['step_ms'])} ms/step", file=sys.stderr)
    return rows


def corpus_rows(size: dict, isolated: bool, scratch: Path) -> list[dict]:
    rows = []
    for megabytes in size["megabytes"]:
        folder = scratch / f"corpus_{megabytes}"
        corpus_bytes = write_corpus(folder, megabytes)
        job = {"corpus": str(folder), "cache": str(scratch / f"cache_{megabytes}"), "repeats": size["repeats"]}
        built = measure({**job, "kind": "tokenize"}, isolated)
        loaded = measure({**job, "kind": "load", "batches": 50}, isolated)
        shutil.rmtree(folder)
        rows.append(
            {
                "corpus_mb": corpus_bytes / 2**20,
                "tokens": built["tokens"],
                "tokenize_seconds": built["seconds"],
                "tokenize_mb_per_sec": corpus_bytes / 2**20 / built["seconds"],
                "tokenize_peak_rss_mib": built["peak_rss_mib"],
                "load_seconds": common.spread(loaded["seconds"]),
                "load_peak_rss_mib": loaded["peak_rss_mib"],
            }
        )
        print(f"{megabytes} MB: tokenized in {built['seconds']:.1f} s", file=sys.stderr)
    return rows


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--scratch", default=None, help="folder for the generated corpora (default: a temp folder)")
    args = options.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        common.worker_output(WORKERS[job["kind"]](job))
        return 0
    mode = common.mode(args)
    size = SIZES[mode]
    isolated = mode != "smoke"  # a fresh interpreter per measurement costs more than the test suite allows
    if args.scratch and not Path(args.scratch).is_dir():
        raise common.UserInputError(f"--scratch {args.scratch}: no such folder")
    scratch = Path(tempfile.mkdtemp(prefix="discrete_diff_scaling_", dir=args.scratch))
    try:
        sequences = sequence_rows(size, isolated)
        corpora = corpus_rows(size, isolated, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    memory = {
        key: max(r[key] for r in corpora) / min(r[key] for r in corpora)
        for key in ("tokenize_peak_rss_mib", "load_peak_rss_mib")
    }
    flatness = {f"{key}_max_over_min": value for key, value in memory.items()}
    flatness["target_flat_within_1.5x_met"] = all(value <= FLAT for value in memory.values())
    payload = {
        "benchmark": NAME,
        "mode": mode,
        "machine": common.machine(),
        "size": size,
        "isolated_processes": isolated,
        "sequence_length": sequences,
        "corpus_size": corpora,
        "memory_flatness": flatness,
    }
    tables = {
        "Training step (diffusion, bf16) against sequence length, constant tokens per batch": common.markdown_table(
            sequences, ["length", "batch", "step_ms", "tokens_per_sec", "peak_rss_mib"]
        ),
        "Tokenizing (first use) and loading (cached memory map, 50 batches) against corpus size": (
            common.markdown_table(
                corpora,
                [
                    "corpus_mb",
                    "tokens",
                    "tokenize_seconds",
                    "tokenize_mb_per_sec",
                    "tokenize_peak_rss_mib",
                    "load_seconds",
                    "load_peak_rss_mib",
                ],
            )
        ),
        "Peak memory flatness (target: max/min <= 1.5)": common.markdown_table([flatness], list(flatness)),
    }
    print(common.write_report(args.out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
