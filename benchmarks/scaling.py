"""How costs grow: training step time and memory against sequence length, and tokenizing/loading against corpus size.

Every measurement runs in a fresh process, so each peak resident memory is that configuration's own. The
corpora are generated text (words drawn from a fixed random vocabulary), written to a scratch folder and
deleted afterwards. Each corpus is tokenized with the character tokenizer and with a byte-level BPE (first use:
hashing, building the tokenizer, encoding, writing the cache). Targets, 5 MB to 500 MB: tokenizing >= 20 MB/s
for both tokenizers (encoding, once the tokenizer is built: the BPE's training is capped at 16 MB of text, a
fixed cost shown in its own column), peak memory of tokenizing and of loading flat within 1.5x.
Command: `python benchmarks/scaling.py [--quick] [--out DIR]`.
"""

from __future__ import annotations

import itertools
import json
import resource
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
              "tokens_per_batch": 2048, "steps": 3, "repeats": 3, "megabytes": [5, 50]},
    "smoke": {"network": {"d_model": 16, "n_layers": 1, "n_heads": 2}, "lengths": [16, 32],
              "tokens_per_batch": 64, "steps": 1, "repeats": 2, "megabytes": [0.1, 0.3]},
}  # fmt: skip
DOCUMENT_MB = 4  # the generated corpus is split into documents of about this size (validation = whole documents)
FLAT = 1.5
TARGET_MB_PER_SEC = 20
TOKENIZERS = ("char", "bpe")
BPE_VOCABULARY = 4096


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


def tokenizer_choice(name: str):
    from discrete_diff.text.tokenizers import ByteLevelBPETokenizer, CharacterTokenizer

    return CharacterTokenizer() if name == "char" else ByteLevelBPETokenizer(BPE_VOCABULARY)


def data_module(job: dict, tokenizer=None):
    from discrete_diff.training.text_data import TextDataModule

    module = TextDataModule(
        corpus=job["corpus"],
        tokenizer=tokenizer or tokenizer_choice(job.get("tokenizer", "char")),
        max_length=256,
        batch_size=32,
        cache_dir=job["cache"],
    )
    module.prepare_data()  # tokenizes into the cache on the first call
    module.setup("fit")
    return module


def tokenize(job: dict) -> dict:
    """First use of a corpus; the time spent building the tokenizer (the BPE's training) is also kept apart."""
    import discrete_diff.training.text_data  # noqa: F401 - imported before the clock starts: seconds of torch & co.

    choice = tokenizer_choice(job["tokenizer"])
    build, building = choice.build, []

    def timed_build(corpus):
        start = time.perf_counter()
        result = build(corpus)
        building.append(time.perf_counter() - start)
        return result

    choice.build = timed_build
    start = time.perf_counter()
    module = data_module(job, choice)
    return {
        "seconds": time.perf_counter() - start,
        "tokenizer_seconds": sum(building),
        "tokens": int(module.tokens.shape[0]),
        # The encoding worker processes, reaped by now (forked: their resident memory includes pages shared with
        # this process, so it overstates what they add).
        "workers_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


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


def corpus_rows(size: dict, isolated: bool, scratch: Path) -> tuple[list[dict], list[dict]]:
    """(tokenizing rows, one per corpus and tokenizer; loading rows, one per corpus)."""
    tokenizing, loading = [], []
    for megabytes in size["megabytes"]:
        folder = scratch / f"corpus_{megabytes}"
        corpus_mb = write_corpus(folder, megabytes) / 2**20
        for name in TOKENIZERS:
            job = {"kind": "tokenize", "corpus": str(folder), "cache": str(scratch / f"cache_{megabytes}_{name}")}
            built = measure({**job, "tokenizer": name}, isolated)
            encoding_seconds = built["seconds"] - built["tokenizer_seconds"]
            tokenizing.append(
                {
                    "corpus_mb": corpus_mb,
                    "tokenizer": name,
                    "tokens": built["tokens"],
                    "tokenizer_seconds": built["tokenizer_seconds"],
                    "tokenize_seconds": built["seconds"],
                    "first_use_mb_per_sec": corpus_mb / built["seconds"],
                    "encode_mb_per_sec": corpus_mb / encoding_seconds,
                    "tokenize_peak_rss_mib": built["peak_rss_mib"],
                    "workers_peak_rss_mib": built["workers_peak_rss_mib"],
                }
            )
            print(f"{megabytes} MB, {name}: tokenized in {built['seconds']:.1f} s", file=sys.stderr)
        job = {"corpus": str(folder), "cache": str(scratch / f"cache_{megabytes}_char"), "repeats": size["repeats"]}
        loaded = measure({**job, "kind": "load", "batches": 50}, isolated)
        shutil.rmtree(folder)
        loading.append(
            {
                "corpus_mb": corpus_mb,
                "load_seconds": common.spread(loaded["seconds"]),
                "load_peak_rss_mib": loaded["peak_rss_mib"],
            }
        )
    return tokenizing, loading


def targets(tokenizing: list[dict], loading: list[dict]) -> dict:
    """Memory flatness (max / min over corpus sizes) and the slowest encoding, per tokenizer."""
    result = {}
    for name in TOKENIZERS:
        rows = [r for r in tokenizing if r["tokenizer"] == name]
        memory = [r["tokenize_peak_rss_mib"] for r in rows]
        result[f"{name}_tokenize_peak_rss_max_over_min"] = max(memory) / min(memory)
        result[f"{name}_slowest_encode_mb_per_sec"] = min(r["encode_mb_per_sec"] for r in rows)
    memory = [r["load_peak_rss_mib"] for r in loading]
    result["load_peak_rss_max_over_min"] = max(memory) / min(memory)
    result["target_flat_within_1.5x_met"] = all(v <= FLAT for k, v in result.items() if k.endswith("max_over_min"))
    result[f"target_{TARGET_MB_PER_SEC}_mb_per_sec_met"] = all(
        result[f"{name}_slowest_encode_mb_per_sec"] >= TARGET_MB_PER_SEC for name in TOKENIZERS
    )
    return result


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
        tokenizing, loading = corpus_rows(size, isolated, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = targets(tokenizing, loading)
    payload = {
        "benchmark": NAME,
        "mode": mode,
        "machine": common.machine(),
        "size": size,
        "isolated_processes": isolated,
        "sequence_length": sequences,
        "corpus_size": tokenizing,
        "loading": loading,
        "targets": summary,
    }
    tables = {
        "Training step (diffusion, bf16) against sequence length, constant tokens per batch": common.markdown_table(
            sequences, ["length", "batch", "step_ms", "tokens_per_sec", "peak_rss_mib"]
        ),
        "Tokenizing (first use: hash, build the tokenizer, encode, write) against corpus size": common.markdown_table(
            tokenizing,
            [
                "corpus_mb",
                "tokenizer",
                "tokens",
                "tokenizer_seconds",
                "tokenize_seconds",
                "first_use_mb_per_sec",
                "encode_mb_per_sec",
                "tokenize_peak_rss_mib",
                "workers_peak_rss_mib",
            ],
        ),
        "Loading (cached token file, 50 batches) against corpus size": common.markdown_table(
            loading, ["corpus_mb", "load_seconds", "load_peak_rss_mib"]
        ),
        f"Targets (memory max/min <= {FLAT}; encoding >= {TARGET_MB_PER_SEC} MB/s)": common.markdown_table(
            [summary], list(summary)
        ),
    }
    print(common.write_report(args.out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))
