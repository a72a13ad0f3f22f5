"""`discrete-diff infill` and `discrete-diff sample --strategy` on real checkpoints of tiny models trained here with
the real Lightning Trainer (a text model and a protein model, a few seconds each)."""

import subprocess
import sys

import pytest
import tiny_checkpoints
from Bio import SeqIO

from discrete_diff.cli import main

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


@pytest.fixture(scope="module")
def text_checkpoint(tmp_path_factory):
    return tiny_checkpoints.text_checkpoint(tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def protein_checkpoint(tmp_path_factory):
    return tiny_checkpoints.protein_checkpoint(tmp_path_factory.mktemp("protein"))


def test_text_infill_prints_the_filled_prompts(text_checkpoint, tmp_path, capsys):
    png = tmp_path / "trajectory.png"
    argv = ["infill", "--checkpoint", text_checkpoint, "--prompt", "Shall I [MASK:7] thee", "--prompt",
            "Rough [MASK:2-6] do shake", "--steps", "16", "--trajectory-png", str(png), "--watch"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    results, view = out.split("--- start ---\n")
    first, second = (block.split(" ===\n", 1)[1][:-1] for block in results.split("=== ")[1:])
    assert first.startswith("Shall I ") and first.endswith(" thee") and len(first) == 20
    assert second.startswith("Rough ") and second.endswith(" do shake")
    assert view.startswith("Shall I _______ thee") and view.rstrip("\n").endswith(first)  # the terminal view
    assert "'Rough [MASK:2-6] do shake': blank lengths (" in err and "chosen by the NELBO" in err
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_prompts_from_a_file_are_batched_into_one_output_file(text_checkpoint, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("So long as [MASK:5] can see\n\n[MASK:4] lives this\nAnd summer's [MASK:6]\n")
    out = tmp_path / "filled.txt"
    argv = ["infill", "--checkpoint", text_checkpoint, "--prompt-file", str(prompts), "--num", "2", "--batch-size",
            "4", "--strategy", "confidence", "--top-k", "5", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert out.read_text().endswith("\n")
    blocks = out.read_text().split("=== ")[1:]
    assert len(blocks) == 6
    assert sum(" prompt=[MASK:4] lives this blanks=4 ===\n" in block for block in blocks) == 2
    assert "6 fills" in capsys.readouterr().err


def test_protein_scaffolds_are_written_as_fasta_with_their_motifs(protein_checkpoint, tmp_path):
    out = tmp_path / "scaffolds.fasta"
    argv = ["infill", "--checkpoint", protein_checkpoint, "--template", "[3-6]MKVL[2-5]WWC[1-4]", "--num", "5",
            "--free-motif-position", "--strategy", "first-hitting", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert out.read_text().endswith("\n")
    records = list(SeqIO.parse(out, "fasta"))
    assert len(records) == 5
    for record in records:
        spacers = [int(n) for n in record.description.split("blanks=")[1].split(",")]
        sequence = str(record.seq)
        assert sequence[spacers[0] : spacers[0] + 4] == "MKVL"
        assert sequence[spacers[0] + 4 + spacers[1] :][:3] == "WWC"
        assert len(sequence) == sum(spacers) + 7


def test_sample_takes_a_strategy_and_filters(text_checkpoint, tmp_path):
    def samples(*options):
        out = tmp_path / "samples.txt"
        argv = ["sample", "--checkpoint", text_checkpoint, "--num", "3", "--length", "32", *options, "--out", str(out)]
        assert main(argv) == 0
        return out.read_text().split("=== sample_")[1:]

    spans = ["--strategy", "spans", "--inner-strategy", "first-hitting", "--span-length", "8", "--top-p", "0.9"]
    first = samples(*spans)
    assert len(first) == 3 and all(len(s.split("===\n", 1)[1]) <= 33 for s in first)  # [EOS] decodes to nothing
    assert samples(*spans) == first
    assert samples("--strategy", "ancestral") != first


def test_sample_at_eos_stops_breaks_or_bans_and_out_files_end_with_a_newline(text_checkpoint, tmp_path):
    def samples(choice):
        out = tmp_path / f"{choice}.txt"
        argv = ["sample", "--checkpoint", text_checkpoint, "--num", "8", "--length", "64", "--at-eos", choice]
        assert main([*argv, "--out", str(out)]) == 0
        text = out.read_text()
        assert text.endswith("\n")
        return [block.split(" ===\n", 1)[1][:-1] for block in text.split("=== sample_")[1:]]

    stopped, broken, banned = samples("stop"), samples("break"), samples("ban")
    assert sum("\n[EOS]\n" in text for text in broken) >= 1  # a model trained 10 steps still draws document ends
    assert stopped == [text.split("\n[EOS]\n")[0] for text in broken]  # the same draws, cut at the first end
    assert not any("[EOS]" in text for text in stopped + banned) and banned != stopped


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--prompt", "x" * 70 + "[MASK:3]"],
            "73 tokens with the longest blanks, more than the model's maximum length 64",
        ),
        (["--prompt", "Shall [MASK:3"], "prompt: malformed blank at character 7"),
        (["--prompt", "Shall [MASK:9-3]"], "prompt: blank range 9-3 at character 7 has min > max"),
        (["--prompt", "Shall I compare"], "prompt: no blank to fill"),
        (["--prompt", "Sha{l [MASK:3]"], "prompt: '{' at character 4 is not in the model's vocabulary"),
        (["--prompt", "a [MASK:2]", "--template", "[3]MKV"], "prompt 2: no blank to fill"),
        (
            ["--prompt", "a [MASK:2]", "--remask-eta", "0.2"],
            "--remask-eta applies to --strategy remasking, not ancestral",
        ),
        (["--prompt", "a [MASK:2]", "--strategy", "remasking", "--remask-eta", "2"], "--remask-eta must be in [0, 1]"),
        (["--prompt", "a [MASK:2]", "--temperature", "0"], "--temperature must be positive, got 0.0"),
        (["--prompt", "a [MASK:2]", "--strategy", "nope"], "--strategy: invalid choice"),
    ],
)
def test_prompts_that_cannot_be_served_exit_2_with_one_line(text_checkpoint, capsys, args, fragment):
    assert main(["infill", "--checkpoint", text_checkpoint, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("discrete-diff: error: ") and fragment in err[0], err


def test_bad_residues_and_missing_checkpoints_through_the_real_entry_point(protein_checkpoint, tmp_path, cli_env):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "discrete_diff", "infill", *args], capture_output=True, text=True, env=cli_env,
            cwd=tmp_path, timeout=120,
        )  # fmt: skip

    for result, fragment in [
        (run("--checkpoint", protein_checkpoint, "--template", "[3]MKVJ[2]"), "residue 'J' at character 7"),
        (run("--checkpoint", str(tmp_path / "none.ckpt"), "--template", "[3]MKV"), "checkpoint not found"),
    ]:
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert len(lines) == 1 and fragment in lines[0], result.stderr
