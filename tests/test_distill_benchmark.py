"""benchmarks/distill.py --smoke distils tiny real teachers (text and proteins), measures teacher and students, and
writes complete JSON, Markdown and PNG; missing inputs are one-line errors."""

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, sonnet_corpus
from protein_family import fasta_text, make_family

from discrete_diff.commands.train import build_cli, fit
from discrete_diff.inference import load_model

sys.path.insert(0, str(REPO / "benchmarks"))

import common  # noqa: E402
import distill  # noqa: E402
import distill_gap  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def train(out, *args: str) -> str:
    cli = build_cli([*args, "--trainer.logger.init_args.save_dir", str(out), "--trainer.enable_progress_bar", "false"])
    fit(cli)
    return cli.trainer.checkpoint_callback.last_model_path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    corpus, data = root / "corpus", root / "data"
    sonnet_corpus(corpus)
    family = make_family(40, length=30, seed=8)  # a stand-in `hemopexin`: the fetch finds it and downloads nothing
    (data / "hemopexin/alignments").mkdir(parents=True)
    (data / "hemopexin/sequences.faa").write_text(fasta_text(family))
    (data / "hemopexin/alignments/family.afa").write_text(fasta_text(family))
    tiny = ["--config", "tiny", "--data.init_args.corpus", str(corpus)]
    teacher = train(root / "teacher", *tiny, "--trainer.max_steps", "10")
    causal = ["--model.objective", "discrete_diff.objectives.Autoregressive"]
    judge = train(root / "judge", *tiny, "--trainer.max_steps", "10", *causal)
    protein = train(
        root / "protein", "--config", "hemopexin", "--data.init_args.data_dir", str(data),
        "--trainer.max_steps", "4", "--trainer.val_check_interval", "4", "--trainer.precision", "32-true",
        "--trainer.max_time", "null", "--model.network.d_model", "16", "--model.network.n_layers", "1",
        "--model.network.n_heads", "2",
    )  # fmt: skip
    return {"teacher": teacher, "judge": judge, "protein": protein, "corpus": corpus, "data": data}


def test_smoke_run_reports_every_number(inputs, tmp_path):
    argv = ["--smoke", "--teacher", inputs["teacher"], "--judge", inputs["judge"], "--protein-teacher"]
    argv += [inputs["protein"], "--corpus", str(inputs["corpus"]), "--data-dir", str(inputs["data"])]
    argv += [
        "--option",
        "model.divergence=forward-kl",
        "--lever",
        "lr:model.optimizer.lr=0.001",
    ]
    assert distill.run([*argv, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "distill.json").read_text())
    assert result["options"] == {"model.divergence": "forward-kl"}
    assert result["levers"] == {"lr": {"model.optimizer.lr": "0.001"}}
    for part in ("text", "proteins"):  # --option reached every distillation, --lever only its own
        baseline, lever = result[part], result[part]["levers"][0]
        config = yaml.safe_load((Path(baseline["students"]).parent / "config.yaml").read_text())
        assert config["model"]["divergence"] == "forward-kl" and config["model"]["optimizer"]["lr"] != 0.001
        config = yaml.safe_load((Path(lever["students"]).parent / "config.yaml").read_text())
        assert config["model"]["divergence"] == "forward-kl" and config["model"]["optimizer"]["lr"] == 0.001
    assert (tmp_path / "distill.md").read_text().startswith("# distill")
    assert (tmp_path / "distill.png").read_bytes()[:4] == b"\x89PNG"
    text = result["text"]
    assert [row["sampler"] for row in text["rows"]] == [
        "teacher@256", "teacher@64", "teacher@16", "teacher@8", "student@16", "student@8",
        "student@16 [lr]", "student@8 [lr]",
    ]  # fmt: skip
    samples = text["size"]["samples"]
    for row in text["rows"]:
        assert 1 <= row["network_calls"] <= row["steps"] and row["judge_bits_per_character"]["mean"] > 0
        assert row["entropy_bits"]["mean"] > 0 and row[f"batch_{samples}_seconds"] > 0
        assert (row["loop_share"] * samples).is_integer() and 0 <= row["loop_share"] <= 1
    size = distill.SIZES["smoke"]
    assert [(r["teacher steps"], r["student steps"]) for r in text["rounds"]] == [(32, 16), (16, 8)]
    assert all(r["seconds"] > 0 for r in text["rounds"] + result["proteins"]["rounds"])
    assert [(r["teacher steps"], r["student steps"]) for r in result["proteins"]["rounds"]] == [(40, 20), (20, 10)]
    assert text["distillation_seconds"] >= sum(r["seconds"] for r in text["rounds"])
    proteins = result["proteins"]["rows"]
    assert [row["sampler"] for row in proteins] == ["teacher@100", "teacher@10", "student@10", "student@10 [lr]"]
    for row in proteins:
        assert 0 <= row["HMM hit rate"] <= 1 and 0 <= row["diversity (1 - identity)"] <= 1
        assert 0 <= row["low-complexity gen"] <= 1 and 0 <= row["homopolymer gen"] <= 1
    # The naturals' values are one set's: the same in every row.
    assert len({(row["low-complexity held-out"], row["homopolymer held-out"]) for row in proteins}) == 1
    report = (tmp_path / "distill.md").read_text()
    assert "| loop_share |" in report and "| low-complexity held-out |" in report
    assert "## Text: the levers side by side" in report and "## Proteins: the levers side by side" in report
    assert "| lr | model.divergence=forward-kl, model.optimizer.lr=0.001 |" in report
    targets = text["targets"] + result["proteins"]["targets"]
    assert len(targets) == 3 * 2 + 2 * 2 and all(isinstance(t["met"], bool) for t in targets)
    bits = {r["sampler"]: r["judge_bits_per_character"]["mean"] for r in text["rows"]}
    assert targets[0]["value"] == pytest.approx(bits["student@8"] / bits["teacher@256"])
    assert targets[3]["value"] == pytest.approx(bits["student@8 [lr]"] / bits["teacher@256"])
    assert targets[0]["met"] == (targets[0]["value"] <= 1.03)
    hits = {r["sampler"]: r["HMM hit rate"] for r in proteins}
    assert targets[6]["met"] == (hits["student@10"] >= hits["teacher@100"] - 0.02)
    assert targets[8]["met"] == (hits["student@10 [lr]"] >= hits["teacher@100"] - 0.02)
    assert size["text"]["max_steps"] == 4  # what the rounds above were cut from


def test_a_lever_with_fewer_rounds_has_its_own_rounds_and_students(inputs, tmp_path):
    """start_steps 16 (not 32) makes one round, 16 -> 8: its rounds come from the distillation, not the benchmark's
    size, and it has no 16-step student to sample."""
    argv = ["--smoke", "--parts", "text", "--teacher", inputs["teacher"], "--judge", inputs["judge"], "--corpus"]
    argv += [str(inputs["corpus"]), "--data-dir", str(inputs["data"]), "--lever", "fewer:model.start_steps=16"]
    assert distill.run([*argv, "--out", str(tmp_path)]) == 0
    text = json.loads((tmp_path / "distill.json").read_text())["text"]
    assert [(r["teacher steps"], r["student steps"]) for r in text["rounds"]] == [(32, 16), (16, 8)]
    assert [(r["teacher steps"], r["student steps"]) for r in text["levers"][0]["rounds"]] == [(16, 8)]
    assert [row["sampler"] for row in text["rows"] if row["model"] == "student"] == [
        "student@16", "student@8", "student@8 [fewer]"
    ]  # fmt: skip
    assert "| fewer | model.start_steps=16 |" in (tmp_path / "distill.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--teacher", "t.ckpt"], "--judge: needed for the text part"),
        (["--parts", "proteins"], "--protein-teacher: needed for the proteins part"),
        (["--parts", "images"], "--parts: unknown ['images']"),
        (["--option", "forward-kl"], "--option 'forward-kl': expected KEY=VALUE"),
        (["--lever", "forward-kl"], "--lever 'forward-kl': expected NAME:KEY=VALUE"),
        (["--lever", "a b:model.ema_decay=0.9"], "--lever 'a b:model.ema_decay=0.9': expected NAME:KEY=VALUE"),
        (["--lever", "lr:0.001"], "--lever lr: '0.001': expected KEY=VALUE"),
        (
            ["--lever", "x:model.ema_decay=0.9", "--lever", "x:model.ema_decay=0.5"],
            "--lever: the name 'x' is given twice",
        ),
    ],
)
def test_missing_inputs_are_one_line(argv, message, tmp_path, capsys):
    assert common.main_guard(distill.NAME, distill.run, [*argv, "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error


def test_gap_smoke_reports_each_round(inputs, tmp_path):
    """distill_gap: one row per student step count, each a per-row mean over the held-out windows, both directions
    of the divergence non-negative (a 10-step teacher barely reads its context: its gap is near 0, not asserted)."""
    argv = ["--smoke", "--teacher", inputs["teacher"], "--out", str(tmp_path)]
    assert distill_gap.run(argv) == 0
    result = json.loads((tmp_path / "distill_gap.json").read_text())
    size = distill_gap.SIZES["smoke"]
    assert [row["student steps"] for row in result["rows"]] == list(size["steps"])
    for row in result["rows"]:
        assert 1 <= row["rows"] <= size["batches"] * size["batch"]
        for key in ("KL(target || one call) bits/char", "KL(one call || target) bits/char"):
            assert row[key]["n"] == row["rows"] and row[key]["min"] >= -1e-6
    assert result["sum over rounds, bits/char"] == pytest.approx(
        sum(row["KL(target || one call) bits/char"]["mean"] for row in result["rows"])
    )
    assert (tmp_path / "distill_gap.md").read_text().startswith("# distill_gap")


def test_gap_is_zero_for_a_teacher_that_ignores_its_input(inputs):
    """A network whose logits do not depend on x_t (its output layer zeroed) predicts the same law at x_t and at x_m:
    nothing for a student to learn, so every per-character gap is 0 up to rounding."""
    model = load_model(inputs["teacher"])
    with torch.no_grad():
        model.network.head.weight.zero_()
    data = common.trained_data(model.data["datamodule"], str(REPO / "data"))
    size = {"batches": 2, "batch": 2}
    row = distill_gap.gap_row(model, data, 8, size, torch.Generator().manual_seed(0))
    assert row["rows"] > 0
    assert row["KL(target || one call) bits/char"]["max"] == pytest.approx(0.0, abs=1e-6)
    assert row["KL(one call || target) bits/char"]["max"] == pytest.approx(0.0, abs=1e-6)
