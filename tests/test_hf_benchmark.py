"""benchmarks/hf_adapter.py at its smallest size: complete JSON and Markdown, ratios that match the rows."""

import json
import math
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import hf_adapter  # noqa: E402

pytestmark = pytest.mark.slow  # trains models or runs subprocesses


def test_hf_adapter_smoke(tmp_path):
    assert hf_adapter.run(["--smoke", "--precisions", "fp32", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "hf_adapter.json").read_text())
    rows = {row["model"]: row for row in result["rows"]}
    assert set(rows) == {"ours", "esm2_adapter"} and result["mode"] == "smoke"
    for row in rows.values():
        assert row["tokens_per_sec"]["n"] == hf_adapter.SIZES["smoke"]["repeats"] and row["tokens_per_sec"]["min"] > 0
    (ratio,) = result["ratios"]
    expected = rows["esm2_adapter"]["tokens_per_sec"]["mean"] / rows["ours"]["tokens_per_sec"]["mean"]
    assert math.isclose(ratio["adapter_vs_ours_tokens_per_sec"], expected)
    assert "adapter_vs_ours_tokens_per_sec" in (tmp_path / "hf_adapter.md").read_text()


def test_hf_adapter_bad_precision_is_one_line_exit_2(capfd):
    assert hf_adapter.common.main_guard("hf_adapter", hf_adapter.run, ["--smoke", "--precisions", "fp8"]) == 2
    assert capfd.readouterr().err.strip() == (
        "benchmarks/hf_adapter.py: error: --precisions: unknown ['fp8']; choose from fp32, bf16"
    )
