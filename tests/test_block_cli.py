"""A tiny block-diffusion model end to end: training, eval, samples past the training length, export, pipeline,
continuations, infill refusals and the noise-window command."""

import json
from pathlib import Path

import pytest
import torch
from conftest import sonnet_corpus

from discrete_diff.block_generation import continue_blocks
from discrete_diff.cli import main
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.errors import UserInputError
from discrete_diff.generation import generate
from discrete_diff.inference import load_model
from discrete_diff.infill import infill
from discrete_diff.objectives import BlockDiffusion
from discrete_diff.pipeline import DiffusionPipeline
from discrete_diff.sampling import SamplingSettings

BLOCK = 8


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("bd3")
    corpus = root / "corpus"
    sonnet_corpus(corpus)
    args = ["--config", "tiny", "--data.init_args.corpus", str(corpus)]
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


def test_sample_length_2000_is_the_library_run_cut_at_eos(trained, tmp_path):
    """`sample --length 2000` on a model whose window is 64: each sample is the block sampler's row up to 2000
    tokens or up to the first [EOS] it drew (a text model never trained to emit [EOS] still draws it by chance)."""
    checkpoint, _, _ = trained
    out = tmp_path / "samples.txt"
    argv = ["sample", "--checkpoint", str(checkpoint), "--num", "2", "--length", "2000", "--out", str(out)]
    assert main([*argv, "--steps", "64", "--seed", "3"]) == 0  # 8 steps per block of 8 (64 per window of 64)
    model = load_model(checkpoint)
    settings = SamplingSettings(steps=64)
    run = generate(model, [2000, 2000], seed=3, settings=settings)
    assert model.domain.format_records(run.records) == out.read_text()
    banned = model.domain.banned_ids(document_breaks=True)
    prompt = torch.zeros((2, 0), dtype=torch.long)
    raw = continue_blocks(model, prompt, 2000, settings, banned=banned, generator=torch.Generator().manual_seed(3))
    eos = model.tokenizer.eos_token_id
    for ids, row in zip(run.ids, raw.tokens, strict=True):
        stops = (row == eos).nonzero()
        assert ids == row[: int(stops[0]) if len(stops) else 2000].tolist()


def test_a_continuation_goes_on_past_the_training_length(trained, capsys):
    checkpoint = str(trained[0])
    prompt = "Shall I compare thee to a summer's day?"
    assert main(["infill", "--checkpoint", checkpoint, "--prompt", f"{prompt}[MASK:300]", "--steps", "64"]) == 0
    text = capsys.readouterr().out.split("===\n", 1)[1].rstrip("\n")
    assert text.startswith(prompt) and len(text) == len(prompt) + 300  # [EOS] is banned in fills: all 300


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


def test_a_pretrained_masked_lm_cannot_be_trained_with_blocks():
    from discrete_diff.models.pretrained import PretrainedMaskedLM
    from discrete_diff.training.module import DiffusionModule

    with pytest.raises(UserInputError, match="cannot be autoregressive .BlockDiffusion needs a discrete-diff"):
        DiffusionModule(network=PretrainedMaskedLM("some/dir"), objective=BlockDiffusion(4))


def test_a_protein_block_model_trains_on_padded_rows_and_generates_framed_proteins(tmp_path):
    """Proteins: padded rows in training, <cls> as a one-token prompt (pinned in the first block), the requested
    lengths (the end token is banned in protein samples), canonical residues only."""
    from protein_family import fasta_text, make_family
    from test_protein_training import TINY_CONFIG

    from discrete_diff.protein.tokenizer import CANONICAL_AMINO_ACIDS

    family = [s[: 24 + i % 7] for i, s in enumerate(make_family(96, length=30, mutation_rate=0.1, seed=5))]
    (tmp_path / "family.fasta").write_text(fasta_text(family))
    config = TINY_CONFIG.replace("SAVE_DIR", str(tmp_path / "runs")).replace("FASTA", str(tmp_path / "family.fasta"))
    (tmp_path / "tiny.yaml").write_text(config.replace("max_steps: 80", "max_steps: 20"))
    objective = ["--model.objective", "discrete_diff.objectives.BlockDiffusion", "--model.objective.block_size", "4"]
    cli = build_cli(["--config", str(tmp_path / "tiny.yaml"), *objective])
    fit(cli)
    model = load_model(cli.trainer.checkpoint_callback.last_model_path)
    assert model.objective.block_size == 4
    run = generate(model, [10, 25, 60], seed=0, settings=SamplingSettings(steps=40))
    assert [len(record.text) for record in run.records] == [10, 25, 60]  # 60: past the window of 40
    assert set("".join(record.text for record in run.records)) <= set(CANONICAL_AMINO_ACIDS)
