"""A tiny block-diffusion model end to end: training, eval, samples past the training length, export, pipeline,
continuations, infill refusals and the noise-window command."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, SONNETS

from discrete_diff.cli import main
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.generation import generate
from discrete_diff.inference import load_model
from discrete_diff.infill import infill
from discrete_diff.objectives import BlockDiffusion
from discrete_diff.pipeline import DiffusionPipeline
from discrete_diff.sampling import SamplingSettings

BLOCK = 8
WINDOW = 64  # configs/tiny.yaml's block_length and max_length


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("bd3")
    corpus = root / "corpus"
    corpus.mkdir()
    for index in range(4):
        lines = SONNETS.splitlines(keepends=True)
        (corpus / f"work_{index}.txt").write_text("".join(lines[index:] + lines[:index]) * 6)
    args = ["--config", str(REPO / "configs/tiny.yaml"), "--data.init_args.corpus", str(corpus)]
    args += ["--model.objective", "discrete_diff.objectives.BlockDiffusion"]
    args += ["--model.objective.init_args.block_size", str(BLOCK)]
    args += ["--trainer.logger.init_args.save_dir", str(root), "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.max_steps", "40", "--trainer.val_check_interval", "20"]
    cli = build_cli(args)
    fit(cli)
    checkpoint = cli.trainer.checkpoint_callback.last_model_path
    assert main(["export", "--checkpoint", checkpoint, "--out", str(root / "model")]) == 0
    return Path(checkpoint), root / "model", corpus


def test_the_checkpoint_is_a_block_model_that_evaluates_a_bound(trained, capsys):
    checkpoint, _, _ = trained
    model = load_model(checkpoint)
    assert isinstance(model.objective, BlockDiffusion) and model.objective.block_size == BLOCK
    assert main(["eval", "--checkpoint", str(checkpoint), "--use-recorded-data", "--json", "--time-draws", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert not result["exact"] and result["time_draws"] == 2 and 0 < result["bits_per_character"] < 10


def test_sample_writes_samples_longer_than_the_training_length(trained, tmp_path, capsys):
    checkpoint, _, _ = trained
    out = tmp_path / "samples.txt"
    argv = ["sample", "--checkpoint", str(checkpoint), "--num", "2", "--length", "200", "--out", str(out)]
    assert main([*argv, "--strategy", "first-hitting"]) == 0
    texts = [block.split("===\n", 1)[1] for block in out.read_text().split("=== sample_")[1:]]
    assert len(texts) == 2 and max(len(text.rstrip("\n")) for text in texts) > WINDOW
    assert "network calls" in capsys.readouterr().err


def test_generate_fills_the_requested_length_or_stops_at_eos(trained):
    model = load_model(trained[0])
    run = generate(model, [150, 90, 20], seed=3, settings=SamplingSettings(steps=32))
    eos = model.tokenizer.eos_token_id
    for ids, wanted in zip(run.ids, [150, 90, 20], strict=True):
        assert eos not in ids and len(ids) <= wanted
    assert len(run.ids[0]) > WINDOW  # one row at least went past the window (the model rarely draws [EOS])


def test_the_exported_directory_samples_what_the_checkpoint_samples(trained):
    checkpoint, directory, _ = trained
    config = json.loads((directory / "config.json").read_text())
    assert config["objective"]["init_args"]["block_size"] == BLOCK
    settings = SamplingSettings(steps=64)
    from_checkpoint = generate(load_model(checkpoint), [100, 100], seed=1, settings=settings)
    from_directory = generate(load_model(directory), [100, 100], seed=1, settings=settings)
    assert from_checkpoint.ids == from_directory.ids and from_checkpoint.network_calls == from_directory.network_calls
    pipeline = DiffusionPipeline.from_pretrained(directory)
    assert pipeline.generate(2, length=100, seed=1, steps=64) == [r.text for r in from_checkpoint.records]


def test_a_blank_at_the_end_is_a_continuation(trained):
    model = load_model(trained[0])
    prompt = "Shall I compare thee to a summer's day? Thou art more lovely and more temperate"
    run = infill(model, [f"{prompt}[MASK:40]"], num=3, seed=0)
    assert len(run.infills) == 3 and run.network_calls > 0
    for fill in run.infills:
        assert fill.text.startswith(prompt) and len(fill.fills[0]) == 40 and fill.text == prompt + fill.fills[0]


def test_a_blank_between_texts_is_refused_in_one_line(trained, capsys):
    checkpoint = str(trained[0])
    assert main(["infill", "--checkpoint", checkpoint, "--prompt", "Shall I [MASK:5] thee"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "use a masked-diffusion model" in error and "prompt" in error


def test_noise_window_command_scores_windows_and_prints_the_config(trained, capsys):
    checkpoint = str(trained[0])
    argv = ["noise-window", "--checkpoint", checkpoint, "--use-recorded-data", "--max-batches", "1"]
    assert main([*argv, "--windows", "0-1,0.3-0.8", "--draws", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[0.0, 1.0]: loss") and lines[1].startswith("[0.3, 0.8]: loss")
    assert sum("<- least variance" in line for line in lines[:2]) == 1
    schedule = json.loads(lines[2].split("schedule ", 1)[1].strip("'"))
    assert schedule["class_path"] == "discrete_diff.schedules.ClippedSchedule"
    assert main([*argv, "--windows", "0.8-0.3"]) == 2
    assert "--windows need 0 <= beta < omega <= 1" in capsys.readouterr().err


def test_bd3_config_differs_from_the_diffusion_config_only_in_its_objective():
    diffusion = yaml.safe_load((REPO / "configs/shakespeare_char.yaml").read_text())
    blocks = yaml.safe_load((REPO / "configs/shakespeare_char_bd3.yaml").read_text())
    objective = blocks["model"].pop("objective")
    assert objective["class_path"] == "discrete_diff.objectives.BlockDiffusion"
    assert diffusion["model"].pop("objective")["class_path"] == "discrete_diff.objectives.MaskedDiffusion"
    for config in (diffusion, blocks):
        config["trainer"]["logger"]["init_args"].pop("name")
    assert blocks == diffusion
    assert torch.tensor(blocks["data"]["init_args"]["block_length"]) % objective["init_args"]["block_size"] == 0
