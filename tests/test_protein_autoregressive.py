"""The protein AR baseline (config hemopexin_ar at tiny sizes) trains and evaluates exactly, and a run's log folder
stands for its best checkpoint by validation, in every command that takes --checkpoint."""

import csv
import json
import random
import re
from pathlib import Path

import pytest
from protein_family import CANONICAL, fasta_text

from discrete_diff.cli import main
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.inference import best_checkpoint, load_model
from discrete_diff.objectives import Autoregressive

pytestmark = pytest.mark.slow  # trains a model

# The packaged AR config with a tiny network and every best checkpoint kept (save_top_k -1), validating often.
OVERLAY = """\
include: hemopexin_ar
trainer:
  precision: 32-true
  max_steps: {steps}
  val_check_interval: {every}
  enable_progress_bar: false
  enable_model_summary: false
  logger: {{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {{save_dir: {runs}}}}}
  callbacks:
    - class_path: discrete_diff.training.checkpoints.LastCheckpoint
      init_args: {{every_n_train_steps: {every}}}
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{monitor: val/nats_per_token, mode: min, filename: "best-{{step}}", save_top_k: -1}}
model:
  network: {{d_model: 32, n_layers: 2, n_heads: 2, max_length: 40}}
  optimizer: {{lr: 0.002, warmup_steps: 30}}
  ema_decay: 0.5
data.init_args: {{corpus: {fasta}, max_length: 40, batch_size: 8, val_fraction: 0.25}}
"""
STEPS, EVERY = 210, 15


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread):
    """Few proteins of random residues: validation improves while the model learns the composition, then worsens
    as it memorises the training proteins, so the best checkpoint is not the last."""
    root = tmp_path_factory.mktemp("protein_ar")
    rng = random.Random(0)
    skewed = CANONICAL[:6] * 4 + CANONICAL  # a composition far from uniform, for the model to learn first
    proteins = ["".join(rng.choice(skewed) for _ in range(rng.randint(24, 34))) for _ in range(24)]
    (root / "proteins.fasta").write_text(fasta_text(proteins))
    config = OVERLAY.format(steps=STEPS, every=EVERY, runs=root / "runs", fasta=root / "proteins.fasta")
    (root / "ar.yaml").write_text(config)
    cli = build_cli(["--config", str(root / "ar.yaml")])
    fit(cli)
    return cli, Path(cli.trainer.log_dir)


def validations(folder: Path, key: str) -> list[float]:
    """The logged validation numbers, in order (metrics.csv logs each at the step before the checkpoint's name)."""
    return [float(row[key]) for row in csv.DictReader(open(folder / "metrics.csv")) if row.get(key)]


def step_of(path: str | Path) -> int:
    return int(re.fullmatch(r"best-step=(\d+)\.ckpt", Path(path).name).group(1))


def test_the_protein_ar_config_trains_an_autoregressive_model(run):
    cli, folder = run
    assert isinstance(cli.model.objective, Autoregressive) and cli.model.network.config.d_model == 32
    assert len(validations(folder, "val/bits_per_residue")) == STEPS // EVERY


def test_a_run_folder_stands_for_its_checkpoint_with_the_lowest_recorded_validation_score(run):
    _, folder = run
    saved = sorted(step_of(p) for p in (folder / "checkpoints").glob("best-*.ckpt"))
    assert saved == list(range(EVERY, STEPS + 1, EVERY))  # save_top_k -1: one per validation
    validation = dict(zip(saved, validations(folder, "val/nats_per_token"), strict=True))
    best = best_checkpoint(folder)
    assert step_of(best.path) == min(validation, key=validation.get)
    assert min(saved) < step_of(best.path) < max(saved)  # learnt, then overfitted: neither the first nor the last
    assert best.candidates == len(saved) and best.score == pytest.approx(min(validation.values()), rel=1e-6)
    assert best_checkpoint(folder / "checkpoints").path == best.path
    assert load_model(folder).global_step == step_of(best.path)


def test_eval_of_a_run_folder_gives_the_exact_bits_per_residue_of_its_best_checkpoint(run, capsys):
    _, folder = run
    arguments = ["--json", "--batch-size", "8", "--use-recorded-data"]
    assert main(["eval", "--checkpoint", str(folder), *arguments]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["exact"] and result["standard_error"] == 0.0
    # The Trainer validated on the same blocks at the best step: eval of that checkpoint gives its number.
    assert result["bits_per_residue"] == pytest.approx(min(validations(folder, "val/bits_per_residue")))
    best = best_checkpoint(folder)
    assert captured.err == f"note: using {best.describe()}\n" and "val/nats_per_token" in captured.err


def test_sample_and_export_take_a_run_folder(run, tmp_path, capsys):
    _, folder = run
    best = best_checkpoint(folder).path.name
    assert main(["generate", "--checkpoint", str(folder), "--num", "2", "--length", "12", "--seed", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count(">") == 2 and best in captured.err
    assert main(["export", "--checkpoint", str(folder), "--out", str(tmp_path / "model")]) == 0
    assert load_model(tmp_path / "model").global_step == step_of(best)


def test_evaluate_proteins_reports_an_ar_model_s_exact_perplexity(run, tmp_path, capsys):
    cli, folder = run
    generated = tmp_path / "generated.fasta"
    assert main(["generate", "--checkpoint", str(folder), "--num", "4", "--length", "20", "--out", str(generated)]) == 0
    alignment = tmp_path / "train.afa"  # unrelated random proteins: cut to one length, a (meaningless) alignment
    alignment.write_text("".join(f">{r.id}\n{r.sequence[:24]}\n" for r in cli.datamodule.train_records))
    args = ["evaluate-proteins", "--generated", str(generated), "--checkpoint", str(folder), "--use-recorded-data"]
    assert main([*args, "--alignment", str(alignment), "--json", str(tmp_path / "metrics.json")]) == 0
    table = capsys.readouterr().out
    likelihood = json.loads((tmp_path / "metrics.json").read_text())["likelihood"]
    assert likelihood["exact"] and likelihood["standard_error_nats"] == 0.0
    assert re.search(rf"held-out NLL perplexity / residue += {likelihood['nelbo_perplexity_per_residue']:.3f} ", table)
    assert likelihood["nats_per_residue"] == pytest.approx(best_checkpoint(folder).score, rel=1e-5)


def test_run_folders_that_cannot_stand_for_one_checkpoint_are_one_line_errors(run, tmp_path, capsys):
    _, folder = run
    (tmp_path / "fresh/checkpoints").mkdir(parents=True)  # a run killed before its first validation
    assert main(["eval", "--checkpoint", str(tmp_path / "fresh")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no checkpoint records a validation score" in error
    assert main(["eval", "--checkpoint", str(folder.parent)]) == 2  # runs/NAME: which version?
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"a folder of runs; pass one of them: {folder}" in error


def test_eval_refuses_the_order_bound_for_an_ar_model(run, capsys):
    _, folder = run
    assert main(["eval", "--checkpoint", str(folder), "--use-recorded-data", "--orders", "4"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    expected = "--orders: the bound over unmasking orders is for masked diffusion, not an autoregressive model"
    assert error == f"discrete-diff: error: {expected}"
