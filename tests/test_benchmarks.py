"""Each benchmark script's smallest configuration (--smoke) runs and writes complete, in-range JSON and Markdown.

The scripts run in this process (a fresh interpreter each would cost most of the time budget); their inputs are
checked with one-line errors and exit status 2.
"""

import json
import math
import statistics
import sys

import pytest
from conftest import REPO, SONNETS, sonnet_corpus

sys.path.insert(0, str(REPO / "benchmarks"))

import block_step  # noqa: E402
import common  # noqa: E402
import likelihood  # noqa: E402
import race  # noqa: E402
import sampling  # noqa: E402
import scaling  # noqa: E402
import speed  # noqa: E402
import standard_error  # noqa: E402
import throughput  # noqa: E402
import training_runs  # noqa: E402
import uniform  # noqa: E402
from test_guidance_benchmark import stand_in_data  # noqa: E402

from discrete_diff import attention_kernels  # noqa: E402
from discrete_diff.cli import main  # noqa: E402
from discrete_diff.sampling import STRATEGIES  # noqa: E402
from discrete_diff.text.degeneration import in_loop  # noqa: E402

pytestmark = pytest.mark.slow  # trains models or runs subprocesses

PNG_MAGIC = b"\x89PNG"


def spread_ok(stat: dict, low: float = 0.0, high: float = math.inf) -> bool:
    return stat["n"] >= 1 and low <= stat["min"] <= stat["mean"] <= stat["max"] <= high and stat["std"] >= 0


def report(out, name: str) -> dict:
    assert (out / f"{name}.md").read_text().startswith(f"# {name}")
    return json.loads((out / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def likelihood_run(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    sonnet_corpus(corpus)
    out = tmp_path_factory.mktemp("likelihood")
    assert likelihood.run(["--smoke", "--corpus", str(corpus), "--seeds", "0,1", "--out", str(out)]) == 0
    return out, report(out, "likelihood")


def test_likelihood_smoke(likelihood_run):
    out, result = likelihood_run
    assert (out / "likelihood.png").read_bytes()[:4] == PNG_MAGIC
    assert {(r["comparison"], r["model"], r["seed"]) for r in result["runs"]} == {
        (c, m, s) for c in ("wall_clock", "equal_tokens") for m in ("mdlm", "ar") for s in (0, 1)
    }
    for run in result["runs"]:
        assert run["bits_per_character"] > 0 and run["bits_per_character_error"] >= 0 and run["steps"] >= 1
        assert run["exact"] == (run["model"] == "ar") and run["curve"]
        assert run["time_draws"] == (0 if run["exact"] else likelihood.SIZES["smoke"]["draws"])
    equal = [r for r in result["runs"] if r["comparison"] == "equal_tokens"]
    assert {r["training_tokens"] for r in equal} == {result["steps"] * 4 * 32}  # smoke: batch 4, block 32
    for row in result["summary"]:
        runs = [r for r in result["runs"] if (r["comparison"], r["model"]) == (row["comparison"], row["model"])]
        ar = [r for r in result["runs"] if (r["comparison"], r["model"]) == (row["comparison"], "ar")]
        bits = [r["bits_per_character"] for r in runs]
        assert row["seeds"] == 2 and row["bits_per_character"] == pytest.approx(sum(bits) / 2)
        assert row["spread"] == pytest.approx(max(bits) - min(bits))
        expected = row["bits_per_character"] / (sum(r["bits_per_character"] for r in ar) / 2)
        assert math.isfinite(row["ratio_to_ar"]) and row["ratio_to_ar"] == pytest.approx(expected)


def test_likelihood_rerun_reuses_finished_runs_and_trains_a_changed_recipe(likelihood_run, tmp_path):
    out, first = likelihood_run
    argv = ["--smoke", "--corpus", first["corpus"], "--seeds", "0,1", "--out", str(out)]
    assert likelihood.run([*argv, "--variants", "ar,mdlm"]) == 0
    again = report(out, "likelihood")
    assert [r["checkpoint"] for r in again["runs"]] == [r["checkpoint"] for r in first["runs"]]
    assert not list((out / "runs").glob("*/version_1"))  # nothing trained a second time
    assert likelihood.run([*argv, "--variants", "clipped", "--comparisons", "wall_clock", "--budget", "1"]) == 0
    recorded = json.loads((out / "likelihood_runs.json").read_text())
    assert [r["model"] for r in recorded].count("clipped") == 2 and len(recorded) == len(first["runs"]) + 2


def test_sampling_smoke(likelihood_run, tmp_path):
    runs = {(r["comparison"], r["model"], r["seed"]): r["checkpoint"] for r in likelihood_run[1]["runs"]}
    diffusion, ar = runs[("equal_tokens", "mdlm", 0)], runs[("equal_tokens", "ar", 0)]
    judge = runs[("wall_clock", "ar", 1)]
    argv = ["--smoke", "--diffusion", diffusion, "--ar", ar, "--judge", judge, "--out", str(tmp_path)]
    assert sampling.run(argv) == 0
    result = report(tmp_path, "sampling")
    assert (tmp_path / "sampling.png").read_bytes()[:4] == PNG_MAGIC
    length, samples = result["size"]["length"], result["size"]["samples"]
    assert result["reference"]["network_calls"] == length  # one call per token with the key-value cache
    steps = sampling.SIZES["smoke"]["steps"]
    assert [(r["strategy"], r["steps"]) for r in result["rows"]] == [(s, n) for s in STRATEGIES for n in steps]
    for row in [result["reference"], *result["rows"]]:
        assert spread_ok(row["judge_bits_per_character"], low=1e-9) and spread_ok(
            row["entropy_bits"], high=math.log2(length)
        )
        assert spread_ok(row["batch_1_seconds"], low=1e-9) and row[f"batch_{samples}_seconds"] > 0
        assert row["network_calls"] >= 1
        assert 0 <= row["loop_share"] <= 1 and (row["loop_share"] * samples).is_integer()  # a share of the samples
    for row in result["rows"]:
        assert math.isfinite(row["speedup_batch_1"]) and row["speedup_batch_1"] > 0
        assert isinstance(row["matches_ar"], bool)
    summary = result["summary"]
    assert summary["ar_network_calls"] == length and not result["judge_is_ar_baseline"]
    assert "| loop_share |" in (tmp_path / "sampling.md").read_text()
    assert summary["fewest_calls_matching_ar"] is None or summary["fewest_calls_matching_ar"] >= 1


def test_standard_error_smoke(likelihood_run, tmp_path):
    runs = {(r["comparison"], r["model"], r["seed"]): r["checkpoint"] for r in likelihood_run[1]["runs"]}
    (tmp_path / "held_out.txt").write_text(SONNETS * 3, encoding="utf-8")
    argv = ["--smoke", "--checkpoint", runs[("equal_tokens", "mdlm", 0)], "--data", str(tmp_path / "held_out.txt")]
    assert standard_error.run([*argv, "--time-draws", "1,2", "--out", str(tmp_path)]) == 0
    result = report(tmp_path, "standard_error")
    repeats = standard_error.SIZES["smoke"]["repeats"]
    assert [(row["time_draws"], row["repeats"]) for row in result["summary"]] == [(1, repeats), (2, repeats)]
    for row in result["summary"]:
        assert row["mean_bits"] > 0 and row["rms_standard_error"] > 0 and 0 <= row["within_two_errors"] <= 1
        bits = [r["bits"] for r in result["runs"][str(row["time_draws"])]]
        assert len(set(bits)) == repeats  # every seed draws differently
        assert row["spread_across_seeds"] == pytest.approx(statistics.stdev(bits))


@pytest.fixture(scope="module")
def block_runs(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("block_corpus")
    sonnet_corpus(corpus)
    out = tmp_path_factory.mktemp("block_likelihood")
    argv = ["--smoke", "--corpus", str(corpus), "--variants", "ar,bd3-4,bd3-8,bd3-16", "--comparisons", "equal_tokens"]
    assert likelihood.run([*argv, "--out", str(out)]) == 0
    return report(out, "likelihood")


def test_likelihood_smoke_block_variants(block_runs):
    runs = {r["model"]: r for r in block_runs["runs"]}
    assert set(runs) == {"ar", "bd3-4", "bd3-8", "bd3-16"}
    for name in ("bd3-4", "bd3-8", "bd3-16"):
        run = runs[name]
        assert not run["exact"] and run["time_draws"] == likelihood.SIZES["smoke"]["draws"]
        assert run["bits_per_character"] > 0 and run["bits_per_character_error"] >= 0
        assert likelihood.load_model(run["checkpoint"]).objective.block_size == int(name.split("-")[1])
    for row in block_runs["summary"]:
        assert row["ratio_to_ar"] == pytest.approx(row["bits_per_character"] / runs["ar"]["bits_per_character"])


def test_sampling_smoke_with_a_block_model(likelihood_run, block_runs, tmp_path):
    runs = {(r["comparison"], r["model"], r["seed"]): r["checkpoint"] for r in likelihood_run[1]["runs"]}
    blocks = next(r["checkpoint"] for r in block_runs["runs"] if r["model"] == "bd3-8")
    ar, judge = runs[("equal_tokens", "ar", 0)], runs[("wall_clock", "ar", 1)]
    argv = ["--smoke", "--diffusion", blocks, "--ar", ar, "--judge", judge, "--out", str(tmp_path)]
    assert sampling.run([*argv, "--long-samples", "2"]) == 0
    result = report(tmp_path, "sampling")
    length, steps = result["size"]["length"], sampling.SIZES["smoke"]["block_steps"]
    assert result["block_size"] == 8
    assert [(r["strategy"], r["steps"]) for r in result["rows"]] == [(s, n) for s in STRATEGIES for n in steps]
    for row in result["rows"]:
        assert row["sampler"].endswith("/block") and spread_ok(row["judge_bits_per_character"], low=1e-9)
        # two blocks of 8, each in at least one call and at most its steps (first-hitting, threshold: one per token)
        most = length if not STRATEGIES[row["strategy"]]().follows_num_steps else length // 8 * steps[0]
        assert 2 <= row["network_calls"] <= most
    long = result["long_samples"]
    assert long["length"] == sampling.SIZES["smoke"]["long_length"] > 32  # past the smoke models' window of 32
    assert len(long["samples"]) == 2 and all(s["judge_bits_per_character"] > 0 for s in long["samples"])
    assert [s["in_loop"] for s in long["samples"]] == [in_loop(s["text"]) for s in long["samples"]]
    text = (tmp_path / "long_samples.md").read_text()
    assert text.startswith("# 2 samples of 40 tokens") and text.count("## Sample") == 2


def test_race_puts_every_model_of_several_sampling_runs_in_one_figure(likelihood_run, block_runs, tmp_path, capsys):
    runs = {(r["comparison"], r["model"], r["seed"]): r["checkpoint"] for r in likelihood_run[1]["runs"]}
    blocks = next(r["checkpoint"] for r in block_runs["runs"] if r["model"] == "bd3-4")
    ar, judge = runs[("equal_tokens", "ar", 0)], runs[("wall_clock", "ar", 1)]
    for label, diffusion in (("mdlm", runs[("equal_tokens", "mdlm", 0)]), ("bd3-4", blocks)):
        argv = ["--smoke", "--diffusion", diffusion, "--ar", ar, "--judge", judge, "--strategies", "ancestral"]
        assert sampling.run([*argv, "--out", str(tmp_path / label)]) == 0
    argv = ["--runs", f"mdlm={tmp_path / 'mdlm'},bd3-4={tmp_path / 'bd3-4'}", "--out", str(tmp_path)]
    assert race.run(argv) == 0
    result = report(tmp_path, "race")
    assert (tmp_path / "race.png").read_bytes()[:4] == PNG_MAGIC
    assert [row["model"] for row in result["rows"]] == ["mdlm", "bd3-4"]
    for row in result["rows"]:
        source = json.loads((tmp_path / row["model"] / "sampling.json").read_text())
        batch = source["size"]["samples"]
        by_name = {r["sampler"]: r for r in source["rows"]}
        assert row["best_judge_bits"] == min(r["judge_bits_per_character"]["mean"] for r in source["rows"])
        near = [r for r in source["rows"] if r["judge_bits_per_character"]["mean"] <= 1.05 * row["best_judge_bits"]]
        for panel, key in enumerate(("batch_1", f"batch_{batch}")):
            chosen = by_name[row[f"fastest_near_best_{key}"]]
            assert chosen in near
            assert race.per_sample(chosen, batch)[panel] == min(race.per_sample(r, batch)[panel] for r in near)
            ratio = race.per_sample(source["reference"], batch)[panel] / race.per_sample(chosen, batch)[panel]
            assert row[f"speedup_vs_ar_{key}"] == pytest.approx(ratio)
    assert common.main_guard(race.NAME, race.run, ["--runs", f"x={tmp_path / 'none'}"]) == 2
    assert "none/sampling.json not found" in capsys.readouterr().err


def test_sampling_long_samples_need_a_block_model(likelihood_run, tmp_path, capsys):
    runs = {(r["comparison"], r["model"], r["seed"]): r["checkpoint"] for r in likelihood_run[1]["runs"]}
    argv = ["--smoke", "--diffusion", runs[("equal_tokens", "mdlm", 0)], "--ar", runs[("equal_tokens", "ar", 0)]]
    argv += ["--judge", runs[("wall_clock", "ar", 1)], "--long-samples", "1", "--out", str(tmp_path)]
    assert common.main_guard(sampling.NAME, sampling.run, argv) == 2
    assert "--long-samples: needs a block-diffusion" in capsys.readouterr().err


def test_block_step_smoke(tmp_path):
    assert (
        block_step.run(
            ["--smoke", "--precisions", "fp32,bf16", "--models", "bd3-4,bd3-dense-4,bd3-4-k2", "--out", str(tmp_path)]
        )
        == 0
    )
    result = report(tmp_path, "block_step")
    assert {(r["model"], r["precision"]) for r in result["rows"]} == {
        (m, p) for m in ("mdlm", "bd3-4", "bd3-dense-4", "bd3-4-k2") for p in ("fp32", "bf16")
    }  # masked diffusion, the baseline, joins every run
    batch = result["size"]["batch"]  # equal batch: every model scores `batch` noisy rows, k copies of batch / k
    assert {r["model"]: r["sequences"] for r in result["rows"]} == {
        "mdlm": batch,
        "bd3-4": batch,
        "bd3-dense-4": batch,
        "bd3-4-k2": batch // 2,
    }
    assert {r["model"]: r["maskings_per_sequence"] for r in result["ratios"]} == {
        "bd3-4": 1,
        "bd3-dense-4": 1,
        "bd3-4-k2": 2,
    }
    ratios = {(r["model"], r["precision"]): r for r in result["ratios"]}
    for (model, precision), ratio in ratios.items():
        mdlm = next(r for r in result["rows"] if r["model"] == "mdlm" and r["precision"] == precision)
        row = next(r for r in result["rows"] if r["model"] == model and r["precision"] == precision)
        assert ratio["step_ratio_to_mdlm"] == pytest.approx(row["median_step_ms"] / mdlm["median_step_ms"])
        assert (ratio["kernel"], ratio["target_met"] is None) == (
            ("dense mask", True) if "dense" in model else ("chunks", False)
        )
    assert {r["model"] for r in result["precision_ratios"]} == {"mdlm", "bd3-4", "bd3-dense-4", "bd3-4-k2"}


def test_block_step_evaluation_times_the_forward_pass_of_each_kernel(tmp_path):
    argv = ["--smoke", "--evaluation", "--models", "bd3-4,bd3-4-flex,bd3-dense-4", "--out", str(tmp_path)]
    assert block_step.run(argv) == 0
    result = report(tmp_path, "block_step")
    assert result["timed"] == "evaluation forward pass"
    assert {r["model"]: r["kernel"] for r in result["ratios"]} == {
        "bd3-4": "chunks",
        "bd3-4-flex": "flex",
        "bd3-dense-4": "dense mask",
    }
    assert result["flex_compiles"] is attention_kernels.flex_compiles("cpu", False)


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


def test_speed_smoke(likelihood_run, block_runs, tmp_path):
    """Every row of the one speed table: the AR baseline, ancestral, threshold, spans with each cache, dKV, a block
    model and a student; the quality rule against the model's own most-step ancestral row; each cache beside its
    uncached twin, running a share of the positions below one."""
    runs = {(r["comparison"], r["model"], r["seed"]): r["checkpoint"] for r in likelihood_run[1]["runs"]}
    diffusion, ar = runs[("equal_tokens", "mdlm", 0)], runs[("equal_tokens", "ar", 0)]
    judge = runs[("wall_clock", "ar", 1)]
    blocks = next(r["checkpoint"] for r in block_runs["runs"] if r["model"] == "bd3-8")
    argv = ["--smoke", "--diffusion", diffusion, "--ar", ar, "--judge", judge, "--blocks", blocks]
    assert speed.run([*argv, "--students", diffusion, "--out", str(tmp_path)]) == 0
    result = report(tmp_path, "speed")
    assert (tmp_path / "speed.png").read_bytes()[:4] == PNG_MAGIC
    size, rows = result["size"], result["rows"]
    labels = [r["sampler"] for r in rows]
    assert [f"ancestral@{n}" for n in size["steps"]] == labels[: len(size["steps"])]
    tempered = {f"ancestral@{n} + temperature {t}": n for t in size["temperatures"] for n in size["temperature_steps"]}
    assert {r["sampler"]: r["network_calls"] for r in rows if r["group"] == "ancestral + temperature"} == tempered
    assert {r["cache"] for r in rows} == {None, "prefix", "dual", "dkv"}
    assert {r["group"] for r in rows} >= {"ancestral", "threshold", "spans", "block diffusion", "students"}
    samples, length = size["samples"], size["length"]
    # the quality rule's reference: each model's ancestral row at the most steps (students: their teacher's)
    own = {
        "diffusion": f"ancestral@{size['steps'][-1]}",
        "blocks": f"blocks: ancestral@{size['block_steps'][-1]}/block",
    }
    references = {model: next(r for r in rows if r["sampler"] == label) for model, label in own.items()}
    for row in [result["reference"], *rows]:
        assert spread_ok(row["judge_bits_per_character"], low=1e-9) and row["network_calls"] >= 1
        assert 0 <= row["loop_share"] <= 1 and spread_ok(row["batch_1_seconds"], low=1e-9)
    for row in rows:
        assert row["tokens_per_second_batch_1"] == pytest.approx(length / row["batch_1_seconds"]["mean"])
        assert row[f"tokens_per_second_batch_{samples}"] == pytest.approx(
            length * samples / row[f"batch_{samples}_seconds"]
        )
        reference = references[row["model"]]
        limit = 1.05 * reference["judge_bits_per_character"]["mean"]
        assert row["within_5_percent"] == (row["judge_bits_per_character"]["mean"] <= limit)
        if row["cache"] is not None:
            assert row["base"] in labels and 0 < row["positions_run_share"] < 1
            assert "cache_bits_change" in row and row["cache_speedup_batch_1"] > 0
        elif row["positions_run_share"] is not None:
            assert row["positions_run_share"] == 1.0
    summary = result["summary"]
    assert summary["quality_reference"] == f"ancestral@{size['steps'][-1]}"
    assert summary["target_3x_batch_1_met"] == (
        summary["its_speedup_batch_1"] is not None and summary["its_speedup_batch_1"] >= 3
    )
    assert "## Each cache against the same sampler without it" in (tmp_path / "speed.md").read_text()


@pytest.mark.parametrize(
    "script, argv, message",
    [
        (sampling, ["--diffusion", "missing.ckpt", "--ar", "a", "--judge", "j"], "missing.ckpt: checkpoint not found"),
        (speed, ["--diffusion", "missing.ckpt", "--ar", "a", "--judge", "j"], "missing.ckpt: checkpoint not found"),
        (likelihood, ["--corpus", "no_such_dataset"], "--corpus no_such_dataset: no such file or folder"),
        (likelihood, ["--budget", "0"], "--budget must be positive"),
        (likelihood, ["--steps", "0"], "--steps must be positive"),
        (likelihood, ["--variants", "mdlm,nope"], "--variants: unknown ['nope']"),
        (likelihood, ["--seeds", "1,x"], "--seeds '1,x': expected comma-separated integers"),
        (throughput, ["--precisions", "fp8"], "--precisions: unknown ['fp8']"),
        (scaling, ["--bogus"], "unrecognized arguments: --bogus"),
        (standard_error, ["--checkpoint", "missing.ckpt"], "missing.ckpt: checkpoint not found"),
        (standard_error, ["--checkpoint", "c", "--time-draws", "0"], "every K must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(script, argv, message, capsys):
    assert common.main_guard(script.NAME, script.run, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"benchmarks/{script.NAME}.py: error: ") and message in error


@pytest.mark.parametrize("name", sorted(likelihood.VARIANTS))
def test_every_likelihood_variant_is_a_valid_config(name, tmp_path, monkeypatch, capsys):
    variant = likelihood.VARIANTS[name]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["train", "--config", variant.config, *variant.overrides, "--print_config"])
    assert done.value.code == 0, capsys.readouterr().err
    assert variant.warm_start is None or variant.warm_start[0] in likelihood.VARIANTS


def test_a_warm_started_variant_spends_the_same_budget_in_two_phases(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(SONNETS * 6)
    (corpus / "b.txt").write_text(SONNETS[::-1] * 6)
    argv = ["--smoke", "--corpus", str(corpus), "--variants", "ar-to-mdlm", "--comparisons", "equal_tokens"]
    assert likelihood.run([*argv, "--out", str(tmp_path)]) == 0
    (run,) = report(tmp_path, "likelihood")["runs"]
    assert run["model"] == "ar-to-mdlm" and not run["exact"]
    assert run["steps"] == likelihood.SIZES["smoke"]["steps"]  # 40% autoregressive + 60% diffusion
    assert len(list((tmp_path / "runs").glob("equal_tokens_ar-to-mdlm_start_seed0"))) == 1


def test_uniform_smoke(tmp_path):
    """Absorbing vs uniform on stand-in data: every table, both processes at every step count and scale."""
    corpus = tmp_path / "corpus"
    sonnet_corpus(corpus)
    stand_in_data(tmp_path / "data", tmp_path)
    argv = ["--smoke", "--corpus", str(corpus), "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    assert uniform.run(argv) == 0
    result = report(tmp_path / "out", "uniform")
    assert [r["process"] for r in result["text"]["held_out"]] == ["absorbing", "uniform"]
    assert all(0 < r["bits/char"] < 20 and r["error"] is not None for r in result["text"]["held_out"])
    steps = uniform.SIZES["smoke"]["steps"]
    assert [(r["process"], r["steps"]) for r in result["text"]["samples"]] == [
        (p, s) for p in ("absorbing", "uniform") for s in steps
    ]
    assert all(r["judge bits/char"] > 0 and r["entropy bits"] >= 0 for r in result["text"]["samples"])
    assert all(r["network calls"] == r["steps"] for r in result["text"]["samples"] if r["process"] == "uniform")
    rows = result["proteins"]["rows"]
    for process in ("absorbing", "uniform"):
        for label in {r["label"] for r in rows}:
            assert [r["w"] for r in rows if (r["process"], r["label"]) == (process, label)] == list(uniform.SCALES)
    assert all(0 <= r["HMM hit"] <= 1 for r in rows)
    assert {t["target"].split(":")[0].split(" ")[0] for t in result["targets"]} == {"uniform", "w"}


def test_an_interrupted_uniform_run_reuses_the_models_it_finished(tmp_path):
    """A second invocation with the same arguments trains nothing (guidance.train's finished.json): the same
    checkpoints, untouched, and the same held-out bounds; another budget trains again."""
    corpus = tmp_path / "corpus"
    sonnet_corpus(corpus)
    out = tmp_path / "out"
    argv = [
        "--smoke",
        "--parts",
        "text",
        "--corpus",
        str(corpus),
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(out),
    ]
    assert uniform.run(argv) == 0
    first = report(out, "uniform")["text"]["held_out"]
    checkpoints = {path: path.stat().st_mtime_ns for path in out.rglob("*.ckpt")}
    assert uniform.run(argv) == 0
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.ckpt")} == checkpoints
    again = report(out, "uniform")["text"]["held_out"]
    assert [(r["steps"], r["train seconds"]) for r in again] == [(r["steps"], r["train seconds"]) for r in first]
    assert uniform.run([*argv, "--budget", "2"]) == 0
    assert len(list(out.rglob("*.ckpt"))) > len(checkpoints)


@pytest.mark.parametrize(("seconds", "limit"), [(0, "00:00:00:00"), (59.9, "00:00:00:59"), (90_061, "01:01:01:01")])
def test_duration_is_lightnings_days_hours_minutes_seconds(seconds, limit):
    assert training_runs.duration(seconds) == limit  # 90,061 s = 1 day + 1 h + 1 min + 1 s
