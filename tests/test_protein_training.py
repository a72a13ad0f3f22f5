"""A tiny protein model end to end: train on a small FASTA, generate FASTA, evaluate, all through the real CLI."""

import csv
import json
import random

import pytest
from Bio import SeqIO
from protein_family import fasta_text, make_family

from discrete_diff.cli import main
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.inference import load_model
from discrete_diff.protein.tokenizer import AMBIGUOUS, CANONICAL_AMINO_ACIDS

pytestmark = pytest.mark.slow  # trains models or runs subprocesses

TINY_CONFIG = """
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  precision: 32-true
  max_steps: 80
  val_check_interval: 40
  limit_val_batches: 2
  check_val_every_n_epoch: null
  log_every_n_steps: 2
  enable_model_summary: false
  enable_progress_bar: false
  logger: {class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: SAVE_DIR, name: tiny}}
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {save_last: true}
model:
  network: {d_model: 32, n_layers: 2, n_heads: 2, max_length: 40}
  optimizer: {lr: 0.005, warmup_steps: 5}
  ema_decay: 0.9
data:
  class_path: discrete_diff.training.protein_data.ProteinDataModule
  init_args: {corpus: FASTA, max_length: 40, batch_size: 32, val_fraction: 0.2}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("protein_run")
    rng = random.Random(0)
    family = [s[: rng.randint(24, 30)] for s in make_family(120, length=30, mutation_rate=0.1, seed=5)]
    (root / "family.fasta").write_text(fasta_text(family))
    config = TINY_CONFIG.replace("SAVE_DIR", str(root / "runs")).replace("FASTA", str(root / "family.fasta"))
    (root / "tiny.yaml").write_text(config)
    cli = build_cli(["--config", str(root / "tiny.yaml")])
    fit(cli)
    return root, cli.trainer.checkpoint_callback.last_model_path, cli.datamodule


def logged(root, key):
    rows = [row for path in (root / "runs").rglob("metrics.csv") for row in csv.DictReader(open(path))]
    return [float(r[key]) for r in rows if r.get(key)]


def test_loss_falls(trained):
    root, _, _ = trained
    values = logged(root, "train/loss")
    assert len(values) >= 30
    # Start: about ln(20) = 3.0 nats per residue (a uniform guess); the family's true entropy is about 0.6 nats
    # per residue (90% of positions keep the ancestor's residue), so 80 steps must already show a clear fall.
    assert sum(values[-10:]) / 10 < sum(values[:10]) / 10 - 0.25
    validation = logged(root, "val/bits_per_residue")
    assert len(validation) == 2 and validation[1] < validation[0]


def parse(path):
    return [(r.id, r.description, str(r.seq)) for r in SeqIO.parse(path, "fasta")]


def test_generate_writes_fasta_with_the_requested_lengths(trained, tmp_path):
    _, checkpoint, _ = trained
    out = tmp_path / "gen.fasta"
    args = ["generate", "--checkpoint", checkpoint, "--num", "5", "--length", "5,17,30", "--steps", "8"]
    assert main([*args, "--out", str(out), "--seed", "3"]) == 0
    assert out.read_text().endswith("\n")
    records = parse(out)
    assert [len(seq) for _, _, seq in records] == [5, 17, 30, 5, 17]
    assert all(set(seq) <= set(CANONICAL_AMINO_ACIDS) for _, _, seq in records)
    assert records[1][0] == "sample_1"
    assert "length=17 strategy=ancestral steps=8 temperature=1.0 seed=3" in records[1][1]


def test_lengths_come_from_the_checkpoint_or_a_range(trained, tmp_path):
    _, checkpoint, data = trained
    stored = load_model(checkpoint).data["lengths"]
    assert stored == data.length_distribution()
    drawn = tmp_path / "drawn.fasta"
    assert main(["generate", "--checkpoint", checkpoint, "--num", "12", "--steps", "4", "--out", str(drawn)]) == 0
    assert {len(seq) for _, _, seq in parse(drawn)} <= set(stored["length"])
    ranged = tmp_path / "ranged.fasta"
    args = ["generate", "--checkpoint", checkpoint, "--num", "12", "--length", "3-9", "--steps", "4"]
    assert main([*args, "--out", str(ranged), "--allow-noncanonical"]) == 0
    assert all(3 <= len(seq) <= 9 and set(seq) <= set(CANONICAL_AMINO_ACIDS + AMBIGUOUS) for _, _, seq in parse(ranged))


def test_generate_takes_every_sampling_option(trained, tmp_path):
    # Greedy draws (top-k 1) with confidence-ordered reveals leave nothing to chance: the seed must not matter,
    # while the default ancestral sampler draws different proteins for different seeds.
    _, checkpoint, _ = trained
    base = ["generate", "--checkpoint", checkpoint, "--num", "4", "--length", "20", "--steps", "5"]
    greedy = [*base, "--strategy", "confidence", "--reveals-per-step", "4", "--top-k", "1"]
    outputs = {}
    for name, args, seed in [("g1", greedy, "1"), ("g2", greedy, "2"), ("a1", base, "1"), ("a2", base, "2")]:
        assert main([*args, "--seed", seed, "--out", str(tmp_path / f"{name}.fasta")]) == 0
        outputs[name] = parse(tmp_path / f"{name}.fasta")
    assert [seq for _, _, seq in outputs["g1"]] == [seq for _, _, seq in outputs["g2"]]
    assert [seq for _, _, seq in outputs["a1"]] != [seq for _, _, seq in outputs["a2"]]
    header = "strategy=confidence steps=5 confidence=max-prob reveals_per_step=4 temperature=1.0 top_k=1 seed=1"
    assert header in outputs["g1"][0][1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--length", "0"], "--length '0': lengths must be positive"),
        (["--length", "39"], "--length 39 exceeds the model's limit of 38 residues"),
        (["--length", "ten"], "expected N, LOW-HIGH or N1,N2,..."),
        (["--steps", "0"], "--steps must be at least 1"),
    ],
)
def test_bad_generation_options_are_one_line_errors(trained, tmp_path, capsys, extra, message):
    _, checkpoint, _ = trained
    assert main(["generate", "--checkpoint", checkpoint, "--out", str(tmp_path / "x.fasta"), *extra]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "x.fasta").exists()


def test_evaluate_proteins_writes_table_json_and_plot(trained, tmp_path, capsys):
    _, checkpoint, data = trained
    generated = tmp_path / "gen.fasta"
    assert main(["generate", "--checkpoint", checkpoint, "--num", "6", "--steps", "8", "--out", str(generated)]) == 0
    alignment = tmp_path / "family.afa"  # equal-length training members: already an alignment
    alignment.write_text("".join(f">{r.id}\n{r.sequence[:24]}\n" for r in data.train_records))
    out_json, plot = tmp_path / "metrics.json", tmp_path / "plot.png"
    args = ["evaluate-proteins", "--generated", str(generated), "--checkpoint", checkpoint, "--use-recorded-data"]
    args += ["--alignment"]
    assert main([*args, str(alignment), "--json", str(out_json), "--plot", str(plot), "--time-draws", "2"]) == 0
    table = capsys.readouterr().out
    assert "HMM hit rate" in table and "held-out NELBO perplexity / residue" in table
    result = json.loads(out_json.read_text())
    assert result["counts"] == {
        "generated": 6,
        "train": len(data.train_records),
        "held_out": len(data.validation_records),
    }
    assert result["family_hmm"]["held_out"] > result["family_hmm"]["shuffled_held_out"]
    likelihood = result["likelihood"]
    assert likelihood["residues"] == sum(len(r.sequence) for r in data.validation_records)
    # Trained on the family, the model must beat a uniform guess over the 20 canonical residues.
    assert 1.0 <= likelihood["nelbo_perplexity_per_residue"] < 20.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
