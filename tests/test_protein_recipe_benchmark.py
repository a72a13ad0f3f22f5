"""benchmarks/protein_recipe.py --smoke trains each lever on a stand-in family, scores each run's best checkpoint on
the held-out tenth against the unigram perplexity, and reuses finished runs."""

import json
import sys

import pytest
from conftest import REPO
from protein_family import stand_in_families

sys.path.insert(0, str(REPO / "benchmarks"))

import protein_recipe  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def test_smoke_run_scores_each_lever_and_reuses_finished_runs(tmp_path):
    stand_in_families(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["--smoke", "--sets", "adeno_fiber", "--levers", "config,width-64", "--data-dir", str(tmp_path / "data")]
    assert protein_recipe.run([*argv, "--out", str(out)]) == 0
    result = json.loads((out / "protein_recipe.json").read_text())
    runs = {r["lever"]: r for r in result["runs"]}
    assert set(runs) == {"config", "width-64"}
    # the lever's width wins over the smoke size's (16): 4x the width, far more parameters
    assert runs["width-64"]["parameters"] > 4 * runs["config"]["parameters"]
    for run in runs.values():
        assert run["train proteins"] + run["held-out proteins"] == 30 and run["held-out proteins"] == 3
        assert run["ratio"] == pytest.approx(run["held-out ppl <="] / run["unigram ppl"])
        assert run["steps"] > 0 and run["best epoch"] <= run["epochs"]
    assert "| adeno_fiber | width-64 |" in (out / "protein_recipe.md").read_text()
    versions = sorted(p.name for p in (out / "runs").rglob("version_*"))
    assert protein_recipe.run([*argv, "--out", str(out)]) == 0  # the same runs again: nothing trains
    assert sorted(p.name for p in (out / "runs").rglob("version_*")) == versions
    assert json.loads((out / "protein_recipe.json").read_text())["runs"] == result["runs"]


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    stand_in_families(tmp_path / "data")  # has no halorhodopsin
    for argv, message in ((["--levers", "x"], "--levers: unknown"), (["--sets", "pooled"], "no record of family"),
                          (["--budget", "-1"], "--budget must be positive")):  # fmt: skip
        argv += ["--smoke", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
        assert protein_recipe.common.main_guard("protein_recipe", protein_recipe.run, argv) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1
