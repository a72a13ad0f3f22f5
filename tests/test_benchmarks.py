"""Each benchmark script's smallest configuration (--smoke) runs and writes complete, in-range JSON and Markdown.

The scripts run in this process (a fresh interpreter each would cost most of the time budget); their inputs are
checked with one-line errors and exit status 2.
"""

import json
import math
import sys

import pytest
from conftest import REPO, SONNETS

sys.path.insert(0, str(REPO / "benchmarks"))

import common  # noqa: E402
import likelihood  # noqa: E402
import sampling  # noqa: E402
import scaling  # noqa: E402
import throughput  # noqa: E402

from discrete_diff.sampling import STRATEGIES  # noqa: E402

PNG_MAGIC = b"\x89PNG"


def spread_ok(stat: dict, low: float = 0.0, high: float = math.inf) -> bool:
    return stat["n"] >= 1 and low <= stat["min"] <= stat["mean"] <= stat["max"] <= high and stat["std"] >= 0


def report(out, name: str) -> dict:
    assert (out / f"{name}.md").read_text().startswith(f"# {name}")
    return json.loads((out / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def likelihood_run(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    for index in range(4):
        lines = SONNETS.splitlines(keepends=True)
        (corpus / f"work_{index}.txt").write_text("".join(lines[index:] + lines[:index]) * 6)
    out = tmp_path_factory.mktemp("likelihood")
    assert likelihood.run(["--smoke", "--corpus", str(corpus), "--out", str(out)]) == 0
    return out, report(out, "likelihood")


def test_likelihood_smoke(likelihood_run):
    out, result = likelihood_run
    assert (out / "likelihood.png").read_bytes()[:4] == PNG_MAGIC
    assert {(r["comparison"], r["model"]) for r in result["runs"]} == {
        (c, m) for c in ("wall_clock", "equal_tokens") for m in ("diffusion", "ar")
    }
    for run in result["runs"]:
        assert run["bits_per_char"] > 0 and run["bits_per_char_error"] >= 0 and run["steps"] >= 1
        assert run["exact"] == (run["model"] == "ar") and run["curve"]
        assert run["time_draws"] == (0 if run["exact"] else likelihood.SIZES["smoke"]["draws"])
    equal = [r for r in result["runs"] if r["comparison"] == "equal_tokens"]
    assert {r["training_tokens"] for r in equal} == {result["steps"] * 4 * 32}  # smoke: batch 4, block 32
    for ratio in result["ratios"]:
        assert math.isfinite(ratio["ratio"]) and ratio["ratio"] > 0 and ratio["ratio_error"] >= 0
        assert ratio["ratio"] == pytest.approx(ratio["diffusion_bits_per_char"] / ratio["ar_bits_per_char"])
        assert isinstance(ratio["target_met"], bool)


def test_sampling_smoke(likelihood_run, tmp_path):
    runs = {(r["comparison"], r["model"]): r["checkpoint"] for r in likelihood_run[1]["runs"]}
    diffusion, ar, judge = runs[("equal_tokens", "diffusion")], runs[("equal_tokens", "ar")], runs[("wall_clock", "ar")]
    argv = ["--smoke", "--diffusion", diffusion, "--ar", ar, "--judge", judge, "--out", str(tmp_path)]
    assert sampling.run(argv) == 0
    result = report(tmp_path, "sampling")
    assert (tmp_path / "sampling.png").read_bytes()[:4] == PNG_MAGIC
    length, samples = result["size"]["length"], result["size"]["samples"]
    assert result["reference"]["network_calls"] == length  # one call per token with the key-value cache
    steps = sampling.SIZES["smoke"]["steps"]
    assert [(r["strategy"], r["steps"]) for r in result["rows"]] == [(s, n) for s in STRATEGIES for n in steps]
    for row in [result["reference"], *result["rows"]]:
        assert spread_ok(row["judge_bits_per_char"], low=1e-9) and spread_ok(
            row["entropy_bits"], high=math.log2(length)
        )
        assert spread_ok(row["batch_1_seconds"], low=1e-9) and row[f"batch_{samples}_seconds"] > 0
        assert row["network_calls"] >= 1
    for row in result["rows"]:
        assert math.isfinite(row["speedup_batch_1"]) and row["speedup_batch_1"] > 0
        assert isinstance(row["matches_ar"], bool)
    summary = result["summary"]
    assert summary["ar_network_calls"] == length and not result["judge_is_ar_baseline"]
    assert summary["fewest_calls_matching_ar"] is None or summary["fewest_calls_matching_ar"] >= 1


def test_throughput_smoke(tmp_path):
    assert throughput.run(["--smoke", "--out", str(tmp_path)]) == 0
    result = report(tmp_path, "throughput")
    assert {(r["model"], r["precision"]) for r in result["rows"]} == {
        (m, p) for m in ("diffusion", "ar", "bert") for p in ("fp32", "bf16")
    }
    for row in result["rows"]:
        assert spread_ok(row["tokens_per_sec"], low=1e-9) and spread_ok(row["step_ms"], low=1e-9)
        assert row["peak_rss_mib"] > 0 and row["parameters"] > 0
    for ratio in result["ratios"]:
        for key in (
            "ours_vs_bert_tokens_per_sec",
            "diffusion_vs_ar_step_time",
            "bert_vs_ours_peak_rss",
            "ours_vs_bert_fastest_repeats",
            "diffusion_vs_ar_fastest_repeats",
        ):
            assert math.isfinite(ratio[key]) and ratio[key] > 0
        assert ratio["ours_vs_bert_target_met"] == (ratio["ours_vs_bert_tokens_per_sec"] >= 1.2)


def test_scaling_smoke(tmp_path):
    assert scaling.run(["--smoke", "--out", str(tmp_path), "--scratch", str(tmp_path)]) == 0
    result = report(tmp_path, "scaling")
    assert [r["length"] for r in result["sequence_length"]] == scaling.SIZES["smoke"]["lengths"]
    for row in result["sequence_length"]:
        assert spread_ok(row["step_ms"], low=1e-9) and row["peak_rss_mib"] > 0
    megabytes = scaling.SIZES["smoke"]["megabytes"]
    expected = [(size, name) for size in megabytes for name in scaling.TOKENIZERS]
    assert [(round(r["corpus_mb"], 1), r["tokenizer"]) for r in result["corpus_size"]] == expected
    for row in result["corpus_size"]:
        assert row["tokens"] > 0 and row["tokenize_seconds"] > row["tokenizer_seconds"] > 0
        assert row["encode_mb_per_sec"] > row["first_use_mb_per_sec"] > 0 and row["tokenize_peak_rss_mib"] > 0
    chars, bpe = (next(r for r in result["corpus_size"] if r["tokenizer"] == name) for name in ("char", "bpe"))
    assert bpe["tokens"] < chars["tokens"]  # merges: fewer tokens than characters
    for row, size in zip(result["loading"], megabytes, strict=True):
        assert row["corpus_mb"] == pytest.approx(size, rel=0.1) and spread_ok(row["load_seconds"], low=1e-9)
    summary = result["targets"]
    assert summary["load_peak_rss_max_over_min"] >= 1 and summary["bpe_tokenize_peak_rss_max_over_min"] >= 1
    assert summary["target_20_mb_per_sec_met"] == (
        min(r["encode_mb_per_sec"] for r in result["corpus_size"]) >= scaling.TARGET_MB_PER_SEC
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("discrete_diff_scaling_")] == []  # scratch removed


@pytest.mark.parametrize(
    "script, argv, message",
    [
        (sampling, ["--diffusion", "missing.ckpt", "--ar", "a", "--judge", "j"], "missing.ckpt: checkpoint not found"),
        (likelihood, ["--corpus", "no_such_dataset"], "--corpus no_such_dataset: no such file or folder"),
        (likelihood, ["--budget", "0"], "--budget must be positive"),
        (likelihood, ["--steps", "0"], "--steps must be positive"),
        (throughput, ["--precisions", "fp8"], "--precisions: unknown ['fp8']"),
        (scaling, ["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(script, argv, message, capsys):
    assert common.main_guard(script.NAME, script.run, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"benchmarks/{script.NAME}.py: error: ") and message in error
