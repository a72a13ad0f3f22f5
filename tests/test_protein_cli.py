"""`discrete-diff evaluate-proteins` without a model, and its input errors."""

import json
import re

import pytest
from protein_family import fasta_text, make_gapped_family

from discrete_diff.cli import main
from discrete_diff.protein.metrics import shuffled

FAMILY = make_gapped_family(40, length=50, seed=6)


@pytest.fixture
def sets(tmp_path):
    paths = {}
    for name, seqs in (("train", FAMILY[:30]), ("held_out", FAMILY[30:]), ("generated", shuffled(FAMILY[30:35]))):
        paths[name] = tmp_path / f"{name}.fasta"
        paths[name].write_text(fasta_text(seqs, prefix=name))
    return paths


def test_metrics_from_fasta_files_only(sets, tmp_path, capsys):
    out = tmp_path / "m.json"
    args = ["evaluate-proteins", "--generated", str(sets["generated"]), "--train", str(sets["train"])]
    assert main([*args, "--held-out", str(sets["held_out"]), "--json", str(out)]) == 0
    assert out.read_text().endswith("}\n")
    result = json.loads(out.read_text())
    assert "likelihood" not in result  # no model
    # No alignment given: the training members (of different lengths) are aligned with FAMSA for the HMM, which
    # then finds the held-out members and none of the shuffled ones.
    hmm = result["family_hmm"]
    assert hmm["alignment_source"] == "FAMSA alignment of the 30 training sequences" and hmm["alignment_rows"] == 30
    assert hmm["held_out"] == 1.0 and hmm["shuffled_held_out"] == 0.0 and hmm["generated"] == 0.0
    # Shuffled members: same composition as the held-out set they came from, far from any training member.
    assert result["composition"]["js_bits"] < 0.05
    assert result["novelty"]["median"] < 0.5 < result["held_out_novelty"]["median"]
    table = capsys.readouterr().out
    assert "novelty: median identity to train" in table
    assert re.search(r"HMM built from +FAMSA alignment of the 30 training sequences\n", table)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--generated", "missing.fasta"], "missing.fasta: FASTA file not found"),
        (["--generated", "GEN"], "give --train and --held-out FASTA files, or a --checkpoint of a protein model"),
        (["--generated", "GEN", "--train", "TRAIN", "--held-out", "HELD", "--alignment", "nope.afa"], "not found"),
    ],
)
def test_bad_inputs_are_one_line_errors(sets, capsys, args, message):
    args = [a.replace("GEN", str(sets["generated"])) for a in args]
    args = [a.replace("TRAIN", str(sets["train"])).replace("HELD", str(sets["held_out"])) for a in args]
    assert main(["evaluate-proteins", *args]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
