"""benchmarks/protein_sampling.py --smoke sweeps every sampling lever of a tiny labelled protein model (trained with
the real Trainer on a stand-in `families` set), marks each row against the targets from its own values, and picks the
best setting by the rule."""

import json
import math
import sys

import pytest
from conftest import REPO
from protein_family import fasta_text, make_family, stand_in_families
from tiny_checkpoints import protein_checkpoint, train

sys.path.insert(0, str(REPO / "benchmarks"))

import protein_sampling  # noqa: E402
from guidance import family_alignment  # noqa: E402

from discrete_diff.protein.fasta import ProteinRecord  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

METRICS = ("low-complexity gen", "low-complexity held-out", "low-complexity ratio", "homopolymer gen",
           "homopolymer held-out", "homopolymer ratio", "HMM hit", "median novelty", "diversity ratio", "seconds",
           "network calls")  # fmt: skip


@pytest.fixture(scope="module")
def families_model(tmp_path_factory):
    """A tiny model of hemopexin, adeno_fiber and a background, conditioned on the family (10 steps)."""
    tmp = tmp_path_factory.mktemp("families")
    stand_in_families(tmp / "data")
    data = f"{{corpus: families, label_field: family, data_dir: {tmp / 'data'}, max_length: 64, batch_size: 8}}"
    checkpoint = train(tmp, ["  class_path: discrete_diff.training.protein_data.ProteinDataModule",
                             f"  init_args: {data}"])  # fmt: skip
    return checkpoint, tmp / "data"


def expected_ratio(generated: float, natural: float) -> float | None:
    return generated / natural if natural > 0 else (1.0 if generated == 0 else None)


def test_smoke_sweeps_every_lever_and_picks_the_best_by_the_rule(families_model, tmp_path):
    checkpoint, data_dir = families_model
    argv = ["--smoke", "--checkpoint", checkpoint, "--data-dir", str(data_dir), "--out", str(tmp_path)]
    assert protein_sampling.run(argv) == 0
    result = json.loads((tmp_path / "protein_sampling.json").read_text())
    assert result["families"] == ["adeno_fiber", "hemopexin"]  # the background proteome: no family to score
    size = protein_sampling.SIZES["smoke"]
    settings = [name for _, name, _ in protein_sampling.grid(size["steps"], list(protein_sampling.LEVERS))]
    assert len(settings) == 19 and len(set(settings)) == 19
    for family in result["families"]:
        rows = [r for r in result["rows"] if r["family"] == family]
        assert [r["setting"] for r in rows] == ["held-out naturals", *settings]
        naturals, samples = rows[0], rows[1:]
        assert naturals["HMM hit"] == 1.0  # a family of point mutants: every held-out member hits its own HMM
        assert naturals["diversity ratio"] == 1.0 and naturals["low-complexity ratio"] == 1.0
        for row in samples:
            assert all(row[m] is not None for m in METRICS if not m.endswith("ratio"))
            assert 0 <= row["HMM hit"] <= 1 and 0 <= row["median novelty"] <= 1 and row["diversity ratio"] >= 0
            assert row["seconds"] > 0 and row["network calls"] >= 1
            for kind in ("low-complexity", "homopolymer"):  # the naturals' value beside each row, and the ratio
                assert row[f"{kind} held-out"] == naturals[f"{kind} gen"]
                assert row[f"{kind} ratio"] == expected_ratio(row[f"{kind} gen"], row[f"{kind} held-out"])
        calls = {r["setting"]: r["network calls"] for r in samples}
        assert 1 <= calls["guidance 2"] <= size["steps"]  # both passes of a guided step: one call of a doubled batch
        assert calls["ancestral, 1 steps"] == 1  # one step reveals everything in one call
        assert calls["first-hitting (exact)"] > size["steps"] >= calls["ancestral, 4 steps"]  # one call per residue
    for row in result["rows"]:  # every mark read from the row's own values
        marks = [row["low-complexity gen"] <= 1.5 * row["low-complexity held-out"], row["HMM hit"] >= 0.9,
                 row["median novelty"] <= 0.6, row["diversity ratio"] >= 0.8]  # fmt: skip
        assert [row[t] for t in protein_sampling.TARGETS] == marks and row["targets met"] == sum(marks)
    summary = {s["setting"]: s for s in result["settings"]}
    assert list(summary) == settings
    for setting, found in summary.items():
        own = [r for r in result["rows"] if r["setting"] == setting]
        assert all(found[t] == all(r[t] for r in own) for t in protein_sampling.TARGETS)
        ratios = [r["low-complexity ratio"] for r in own]
        assert found["worst low-complexity ratio"] == (None if None in ratios else max(ratios))
    best = result["best"]
    most = max(s["targets met"] for s in result["settings"])
    tied = [s for s in result["settings"] if s["targets met"] == most]

    def worst(s: dict) -> float:
        return math.inf if s["worst low-complexity ratio"] is None else s["worst low-complexity ratio"]

    assert best["targets met"] == most and worst(best) == min(worst(s) for s in tied)
    assert best["setting"] == next(s["setting"] for s in tied if worst(s) == worst(best))  # ties: the earlier
    exact, base = summary["first-hitting (exact)"], summary["ancestral, 4 steps"]
    low = protein_sampling.TARGETS[0]
    verdict = "the model" if not exact[low] else "the sampler" if not base[low] else "neither"
    assert result["cause"].startswith(verdict)
    report = (tmp_path / "protein_sampling.md").read_text()
    assert f"The cause: {verdict}" in report and f"{best['setting']}: {most} of 4 targets met" in report


def test_an_unlabelled_model_of_a_builtin_set_is_scored_with_the_sets_first_alignment(tmp_path):
    family = make_family(6, length=20, seed=3)
    (tmp_path / "hemopexin/alignments").mkdir(parents=True)
    (tmp_path / "hemopexin/sequences.faa").write_text(fasta_text(family))
    (tmp_path / "hemopexin/alignments/medoid.afa").write_text(fasta_text(family))
    train_records = [ProteinRecord(f"p{i}", f"p{i}", s) for i, s in enumerate(family[:4])]
    rows = family_alignment("hemopexin", None, train_records, str(tmp_path))
    assert rows == {f"p{i}": s for i, s in enumerate(family[:4])}  # training rows only


def test_bad_inputs_are_one_line_errors(families_model, tmp_path, capsys):
    checkpoint, data_dir = families_model
    cases = ((["--checkpoint", str(tmp_path / "missing.ckpt")], "missing.ckpt: checkpoint not found"),
             (["--checkpoint", checkpoint, "--levers", "temperature,warmth"], "--levers: unknown ['warmth']"),
             (["--checkpoint", checkpoint, "--families", "proteome"], "--families: unknown ['proteome']"))  # fmt: skip
    for argv, message in cases:
        argv += ["--smoke", "--data-dir", str(data_dir), "--out", str(tmp_path)]
        assert protein_sampling.common.main_guard(protein_sampling.NAME, protein_sampling.run, argv) == 2
        error = capsys.readouterr().err
        assert error.startswith("benchmarks/protein_sampling.py: error: ") and message in error
        assert error.count("\n") == 1
    assert not (tmp_path / "protein_sampling.json").exists()


def test_guidance_needs_labels_named_and_is_left_out_of_the_default_levers(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    checkpoint = protein_checkpoint(tmp_path / "model")
    base = ["--smoke", "--checkpoint", checkpoint, "--out", str(tmp_path)]
    argv = [*base, "--levers", "temperature,guidance"]
    assert protein_sampling.common.main_guard(protein_sampling.NAME, protein_sampling.run, argv) == 2
    assert "--levers guidance: " in capsys.readouterr().err and not (tmp_path / "protein_sampling.json").exists()
    assert protein_sampling.run(base) == 0
    settings = {r["setting"] for r in json.loads((tmp_path / "protein_sampling.json").read_text())["rows"]}
    assert "temperature 0.9" in settings and not any(s.startswith("guidance") for s in settings)
