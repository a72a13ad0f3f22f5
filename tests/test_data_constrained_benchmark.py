"""benchmarks/data_constrained.py --smoke runs on stand-in data (a `families` folder and a small corpus), picks each
run's best checkpoint by validation, and reports the crossover epoch as defined."""

import json
import sys
from pathlib import Path

import pytest
from conftest import REPO, sonnet_corpus
from protein_family import make_family

sys.path.insert(0, str(REPO / "benchmarks"))

import data_constrained  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def stand_in_families(data_dir):
    """A `families` folder the fetch takes as it is: adeno_fiber made of four unrelated sub-families (so that its
    identity split has clusters to hold out), the other two families one each."""
    members = {"adeno_fiber": [s for seed in range(4) for s in make_family(8, length=30, seed=seed)]}
    members["hemopexin"] = make_family(20, length=30, seed=5)
    members["halorhodopsin"] = make_family(20, length=40, seed=6)
    lines = [f">{name}{i} family={name}\n{s}\n" for name, found in members.items() for i, s in enumerate(found)]
    (data_dir / "families").mkdir(parents=True)
    (data_dir / "families/sequences.faa").write_text("".join(lines))


def test_smoke_run_reports_best_checkpoints_ratios_and_curves(tmp_path):
    stand_in_families(tmp_path / "data")
    corpus = sonnet_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    argv = ["--smoke", "--sets", "adeno_fiber,text", "--data-dir", str(tmp_path / "data"), "--corpus", str(corpus)]
    assert data_constrained.run([*argv, "--out", str(out)]) == 0
    result = json.loads((out / "data_constrained.json").read_text())
    assert (out / "data_constrained.md").read_text().startswith("# data_constrained")
    assert (out / "data_constrained.png").read_bytes()[:4] == b"\x89PNG"
    runs = {(r["set"], r["split"], r["model"]): r for r in result["runs"]}
    assert set(runs) == {(s, split, m) for s, split in (("adeno_fiber", "sequence"), ("adeno_fiber", "identity"),
                         ("text", "works")) for m in ("diffusion", "ar")}  # fmt: skip
    for run in runs.values():
        assert Path(run["checkpoint"]).name == f"best-step={run['best_step']}.ckpt"  # the lowest validation's save
        assert min(p["bits"] for p in run["curve"]) == next(
            p["bits"] for p in run["curve"] if p["step"] == run["best_step"]
        )
        assert 0 < run["best_epoch"] <= run["epochs"] and run["held_out_bits"] > 0
        assert run["exact"] == (run["model"] == "ar")
    identity, sequence = runs[("adeno_fiber", "identity", "ar")], runs[("adeno_fiber", "sequence", "ar")]
    assert identity["held_out_sequences"] >= 8  # a whole sub-family held out at least
    assert identity["train_sequences"] + identity["held_out_sequences"] <= 32
    assert sequence["train_sequences"] + sequence["held_out_sequences"] == 32
    assert runs[("text", "works", "ar")]["train_units"] <= data_constrained.SIZES["smoke"]["characters"]
    for row in result["comparisons"]:
        assert row["ratio"] == pytest.approx(row["diffusion bits"] / row["ar bits"])
    assert [row["split"] for row in result["targets"]] == ["sequence", "identity"]
    assert all(row["target met"] is None for row in result["targets"])  # one family of three: no verdict


def curve(steps_per_epoch, bits):
    return {"curve": [{"step": 2 * (i + 1), "epochs": 2 * (i + 1) / steps_per_epoch, "bits": b} for i, b in
                      enumerate(bits)]}  # fmt: skip


def test_crossover_is_where_the_mean_bound_goes_below_ar_for_good():
    ar = [curve(4, [2.6, 2.4, 2.5, 2.7]), curve(4, [2.6, 2.4, 2.5, 2.7])]
    assert data_constrained.crossover_epoch([curve(4, [3.0, 2.5, 2.4, 2.3]), curve(4, [3.0, 2.5, 2.6, 2.3])], ar) == 2.0
    assert data_constrained.crossover_epoch([curve(4, [3.0, 2.5, 2.6, 2.8])], ar) is None
    long, short = curve(4, [3.0, 2.5, 2.0, 2.0]), curve(4, [3.0, 2.6])  # the short seed validated twice
    assert data_constrained.crossover_epoch([long], ar) == 1.5
    assert data_constrained.crossover_epoch([long, short], ar) is None  # only the steps every seed reached count
    dip = curve(4, [2.5, 2.5, 2.6, 2.3])  # below at the first validation, above at the next two, then below
    assert data_constrained.crossover_epoch([dip], ar) == 2.0


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    for argv, message in ((["--budget", "0"], "--budget must be positive"), (["--sets", "x"], "choose from"),
                          (["--scale", "2"], "--scale: unknown"), (["--splits", "x"], "--splits: unknown"),
                          (["--sets", "text", "--splits", "identity"], "none of the sets text has"),
                          (["--orders", "-1"], "--orders must be 0 (off) or a number")):  # fmt: skip
        assert data_constrained.common.main_guard("data_constrained", data_constrained.run,
                                                  [*argv, "--out", str(tmp_path)]) == 2  # fmt: skip
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1


def test_splits_keep_only_the_named_held_out_rule():
    every = data_constrained.plan(["halorhodopsin", "text"], 1, [1])
    assert {split for _, split, *_ in every} == {"sequence", "identity", "works"}
    chosen = data_constrained.plan(["halorhodopsin", "text"], 1, [1], ("identity",))
    assert chosen == [("halorhodopsin", "identity", model, 0, 1) for model in data_constrained.MODELS]


def test_scale_multiplies_parameters_so_width_grows_by_its_square_root():
    base = data_constrained.load_config("hemopexin")["model"]["network"]["d_model"]
    widths = [data_constrained.width("hemopexin", {"network": {}}, int(s)) for s in data_constrained.SCALES]
    assert widths == [base, 2 * base, 4 * base]
    assert data_constrained.width("hemopexin", {"network": {"d_model": 16}}, 16) == 64


def test_options_reach_both_models_and_an_unknown_key_is_a_one_line_error(tmp_path, capsys):
    stand_in_families(tmp_path / "data")
    argv = ["--smoke", "--sets", "adeno_fiber", "--splits", "identity", "--data-dir", str(tmp_path / "data")]
    out = tmp_path / "out"
    assert data_constrained.run([*argv, "--option", "model.network.dropout=0.25", "--out", str(out)]) == 0
    result = json.loads((out / "data_constrained.json").read_text())
    assert result["options"] == "model.network.dropout=0.25"
    assert "settings besides the configs': model.network.dropout=0.25" in (out / "data_constrained.md").read_text()
    assert sorted(r["model"] for r in result["runs"]) == ["ar", "diffusion"]
    for run in result["runs"]:
        assert data_constrained.load_model(run["checkpoint"]).network.config.dropout == 0.25
    # The same runs again with the bound over orders: reused, not retrained, and scored with it (kept in the record).
    again = [*argv, "--option", "model.network.dropout=0.25", "--orders", "2", "--out", str(out)]
    assert data_constrained.run(again) == 0
    rescored = json.loads((out / "data_constrained.json").read_text())
    assert [r["checkpoint"] for r in rescored["runs"]] == [r["checkpoint"] for r in result["runs"]]
    diffusion = next(r for r in rescored["runs"] if r["model"] == "diffusion")
    assert diffusion["orders"] == 2 and diffusion["order_bits"] > 0 and diffusion["order_error"] > 0
    row = rescored["comparisons"][0]
    assert row["ratio (orders)"] == pytest.approx(diffusion["order_bits"] / row["ar bits"])
    recorded = json.loads((out / "data_constrained_runs.json").read_text())
    assert [r.get("order_bits") for r in recorded if r["model"] == "diffusion"] == [diffusion["order_bits"]]
    capsys.readouterr()
    bad = [*argv, "--option", "model.network.dropout_rate=0.1", "--out", str(tmp_path / "bad")]
    assert data_constrained.common.main_guard("data_constrained", data_constrained.run, bad) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("benchmarks/data_constrained.py: error: hemopexin: ")
    assert "'dropout_rate' is not accepted" in errors[0] and "settings: model.network.dropout_rate=0.1" in errors[0]
    assert data_constrained.common.main_guard("data_constrained", data_constrained.run, [*bad, "--option", "x"]) == 2
    assert "--option 'x': expected KEY=VALUE" in capsys.readouterr().err
