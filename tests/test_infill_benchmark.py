"""benchmarks/infill.py in its smallest configuration, on a local corpus: complete, in-range JSON and Markdown;
a missing checkpoint is one line and exit status 2."""

import json
import math
import sys

import pytest
from conftest import REPO, sonnet_corpus

sys.path.insert(0, str(REPO / "benchmarks"))

import infill  # noqa: E402

pytestmark = pytest.mark.slow  # trains models or runs subprocesses


def test_infill_benchmark_smoke(tmp_path):
    corpus = tmp_path / "corpus"
    sonnet_corpus(corpus)
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("Then let not winter's ragged hand deface\nIn thee thy summer, ere thou be distill'd:\n")
    out = tmp_path / "out"
    argv = ["--smoke", "--corpus", str(corpus), "--lines", str(held_out), "--out", str(out), "--num-lines", "2"]
    assert infill.run(argv) == 0
    result = json.loads((out / "infill.json").read_text())
    assert (out / "infill.md").read_text().startswith("# infill")
    assert result["lines"] == 2
    assert 10 <= result["blank tokens"]["min"] <= result["blank tokens"]["max"] <= 30
    # An untrained-ish model over ~40 characters: the bound lies between 0 and far above log2(40) bits.
    assert 0 < result["blank NELBO bits/char"]["mean"] < 20
    assert [row["strategy"] for row in result["infill"]] == ["ancestral", "first-hitting", "confidence"]
    first_hitting = result["infill"][1]
    assert first_hitting["network calls"]["mean"] == result["blank tokens"]["mean"]  # one call per blank token
    assert all(row["seconds per infill"]["min"] > 0 for row in result["infill"])
    rule = result["length rule"]
    assert 0 <= rule["exact"]["mean"] <= 1 and 0 <= rule["abs error (tokens)"]["max"] <= 5
    assert math.isfinite(rule["seconds per choice"]["mean"])


def test_missing_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    argv = ["--checkpoint", str(tmp_path / "none.ckpt"), "--out", str(tmp_path)]
    assert infill.common.main_guard("infill", infill.run, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("benchmarks/infill.py: error: ") and "checkpoint not found" in err[0]
    assert infill.common.main_guard("infill", infill.run, ["--out", str(tmp_path)]) == 2
    assert "--checkpoint is required" in capsys.readouterr().err
