"""benchmarks/proteins.py --smoke runs on stand-in data sets and writes complete JSON and Markdown."""

import json
import sys

import pytest
from conftest import REPO
from protein_family import fasta_text, make_family

sys.path.insert(0, str(REPO / "benchmarks"))

import proteins  # noqa: E402

pytestmark = pytest.mark.slow  # trains models or runs subprocesses


def stand_in_sets(data_dir):
    """Synthetic `hemopexin` (with an alignment) and `proteome` folders: the fetch finds them and downloads nothing."""
    family = make_family(40, length=30, seed=8)
    (data_dir / "hemopexin/alignments").mkdir(parents=True)
    (data_dir / "hemopexin/sequences.faa").write_text(fasta_text(family))
    (data_dir / "hemopexin/alignments/family.afa").write_text(fasta_text(family))
    (data_dir / "proteome").mkdir()
    (data_dir / "proteome/sequences.faa").write_text(fasta_text(make_family(30, length=80, mutation_rate=0.6, seed=9)))


def test_smoke_run_reports_every_number(tmp_path):
    stand_in_sets(tmp_path / "data")
    argv = ["--smoke", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    assert proteins.run(argv) == 0
    result = json.loads((tmp_path / "out/proteins.json").read_text())
    assert [row["data set"] for row in result["summary"]] == ["hemopexin", "proteome"]
    hemopexin = result["results"]["hemopexin"]["metrics"]
    assert hemopexin["counts"]["generated"] == proteins.SIZES["smoke"]["generated"]
    assert hemopexin["family_hmm"]["held_out"] == 1.0 and hemopexin["family_hmm"]["shuffled_held_out"] == 0.0
    by_temperature = result["results"]["hemopexin"]["by_temperature"]
    assert [row["temperature"] for row in by_temperature] == list(proteins.TEMPERATURES)
    assert by_temperature[0]["HMM hit gen"] == hemopexin["family_hmm"]["generated"]  # the first is the main run
    assert all(0.0 <= row["HMM hit gen"] <= 1.0 and 0.0 <= row["median novelty"] <= 1.0 for row in by_temperature)
    degeneration = {"low-complexity": "low_complexity_fraction", "homopolymer": "homopolymer_fraction"}
    for column, key in degeneration.items():
        assert by_temperature[0][f"{column} gen"] == hemopexin[key]["generated"]
        assert {row[f"{column} held-out"] for row in by_temperature} == {hemopexin[key]["held_out"]}
        assert result["summary"][0][f"{column} held-out"] == hemopexin[key]["held_out"]
    speed = result["results"]["proteome"]["speed"]
    assert (speed["sequences"], speed["length"]) == proteins.SIZES["smoke"]["speed"] and speed[
        "residues_per_second"
    ] > 0
    report = (tmp_path / "out/proteins.md").read_text()
    assert report.startswith("# proteins") and "Hemopexin samples by sampling temperature" in report
    assert (tmp_path / "out/proteins_hemopexin.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    for argv, message in ((["--budget", "0"], "--budget must be positive"), (["--datasets", "x"], "choose from")):
        assert proteins.common.main_guard("proteins", proteins.run, [*argv, "--out", str(tmp_path)]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1
