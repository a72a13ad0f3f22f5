"""End to end on a real tiny model, a real Lightning Trainer and a real corpus on disk."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import sonnet_corpus

from discrete_diff.checkpoint_format import FORMAT_VERSION
from discrete_diff.cli import main
from discrete_diff.commands.config_files import config_names
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.denoiser import Bidirectional, DenoiserInput
from discrete_diff.generation import generate
from discrete_diff.inference import load_model, read_checkpoint
from discrete_diff.objectives import Decoding, MaskedDiffusion
from discrete_diff.objectives.order_bound import importance_weighted_bound
from discrete_diff.training.ema import ExponentialMovingAverage

pytestmark = pytest.mark.slow  # trains models or runs subprocesses


def tiny_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config",
        "tiny",
        "--data.init_args.corpus",
        str(corpus),
        "--trainer.logger.init_args.save_dir",
        str(out),
        "--trainer.enable_progress_bar",
        "false",
        *extra,
    ]


def metrics(run_dir: Path) -> list[dict]:
    files = sorted(run_dir.rglob("metrics.csv"))
    return [row for f in files for row in csv.DictReader(open(f))]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request):
    """Train the tiny config for 60 steps once; several tests read the run."""
    small_corpus = request.getfixturevalue("module_corpus")
    out = tmp_path_factory.mktemp("run")
    cli = build_cli(tiny_args(small_corpus, out, "--trainer.max_steps", "60", "--trainer.val_check_interval", "30"))
    fit(cli)
    return cli, out, small_corpus


@pytest.fixture(scope="module")
def module_corpus(tmp_path_factory):

    corpus = tmp_path_factory.mktemp("corpus")
    sonnet_corpus(corpus)
    return corpus


def test_loss_falls(trained):
    _, out, _ = trained
    losses = [float(r["train/loss"]) for r in metrics(out) if r.get("train/loss")]
    assert len(losses) >= 10
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3
    val = [float(r["val/bits_per_character"]) for r in metrics(out) if r.get("val/bits_per_character")]
    assert len(val) == 2 and val[1] < val[0]


def test_checkpoint_reloads_to_identical_outputs(trained):
    cli, _, _ = trained
    model = load_model(cli.trainer.checkpoint_callback.last_model_path)
    tokens = torch.randint(0, len(model.tokenizer), (2, 32), generator=torch.Generator().manual_seed(0))
    inputs = DenoiserInput(tokens, Bidirectional())
    cli.model.eval()
    with torch.no_grad():  # after fit the module holds the averaged weights, as the checkpoint does
        assert torch.equal(model.network(inputs), cli.model.network(inputs))
    assert model.global_step == 60
    first = generate(model, [32, 32], seed=3).ids
    again = generate(load_model(cli.trainer.checkpoint_callback.last_model_path), [32, 32], seed=3).ids
    assert first == again and model.mask_id not in {token for ids in first for token in ids}


def test_eval_with_one_draw_estimates_its_error_across_sequences(trained, capsys):
    cli, _, corpus = trained
    last = cli.trainer.checkpoint_callback.last_model_path
    assert main(["eval", "--checkpoint", last, "--data", str(corpus), "--time-draws", "1"]) == 0
    printed = capsys.readouterr().out
    assert "± 0.0000" not in printed and "±: estimated across sequences" in printed
    assert "masking levels integrated over [0, 1]" in printed


def test_eval_with_orders_reports_the_importance_weighted_bound_below_one_order(trained, capsys):
    cli, _, corpus = trained
    last = cli.trainer.checkpoint_callback.last_model_path
    common = ["eval", "--checkpoint", last, "--data", str(corpus), "--max-batches", "1", "--batch-size", "4", "--json"]
    results = {}
    for orders in (1, 8):
        assert main([*common, "--orders", str(orders)]) == 0
        results[orders] = json.loads(capsys.readouterr().out)
    one, eight = results[1], results[8]
    assert one["orders"] == 1 and one["standard_error"] is None and eight["orders"] == 8
    assert eight["tokens"] == one["tokens"] == 4 * 64  # the first batch's four blocks
    model = load_model(last)  # the command's number is the library's on the same blocks and orders
    blocks = model.domain.evaluation_data(str(corpus), length=model.max_length, batch_size=4).batches
    expected = importance_weighted_bound(model.network, blocks, model.mask_id, orders=8, max_batches=1)
    assert eight["nats_per_token"] == pytest.approx(expected.nats_per_token, rel=1e-6)
    assert main([*common[:-1], "--orders", "2"]) == 0
    assert "importance-weighted over K=2 unmasking orders per sequence; ±: jackknife" in capsys.readouterr().out
    assert main([*common, "--orders", "-1"]) == 2
    assert "--orders must be 0 (the NELBO) or a number of orders, got -1" in capsys.readouterr().err
    assert main([*common, "--orders", "8", "--precision", "bf16"]) == 0  # the network in bf16: close, not equal
    bf16 = json.loads(capsys.readouterr().out)["nats_per_token"]
    assert bf16 != eight["nats_per_token"] and bf16 == pytest.approx(eight["nats_per_token"], rel=1e-2)


def test_checkpoint_holds_no_pickled_objects(trained):
    cli, _, _ = trained
    best = next(c.best_model_path for c in cli.trainer.checkpoint_callbacks if c.best_model_path)
    checkpoint = read_checkpoint(best)  # weights_only=True load
    meta = checkpoint["discrete_diff"]
    assert meta["objective"]["class_path"] == "discrete_diff.objectives.masked_diffusion.MaskedDiffusion"
    assert meta["domain"] == {"name": "text"} and meta["format_version"] == FORMAT_VERSION


def test_resume_continues_from_the_saved_step(trained, tmp_path):
    cli, _, corpus = trained
    last = cli.trainer.checkpoint_callback.last_model_path
    resumed = build_cli(
        tiny_args(
            corpus,
            tmp_path,
            "--trainer.max_steps",
            "80",
            "--trainer.val_check_interval",
            "30",
            "--ckpt_path",
            last,
        )
    )
    fit(resumed)
    assert resumed.trainer.global_step == 80
    steps = [int(r["step"]) for r in metrics(tmp_path) if r.get("train/loss")]
    assert min(steps) >= 60


@pytest.mark.parametrize("config", [name for name in config_names() if not name.startswith("distill/")])
def test_every_config_parses(config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # nothing is read or written: the data modules only check their arguments
    with pytest.raises(SystemExit) as done:
        main(["train", "--config", config, "--print_config"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "model:" in out and "trainer:" in out and "class_path" in out
    assert not any(tmp_path.iterdir())


def test_ddp_validates_every_batch_once_and_logs_the_single_process_number(
    module_corpus, tmp_path, cli_env, one_thread
):
    """Two gloo processes share the validation batches; the logged number is the one a single process computes."""
    whole_validation_set = ("--trainer.limit_val_batches", "1.0")
    command = [
        sys.executable,
        "-m",
        "discrete_diff",
        "train",
        *tiny_args(
            module_corpus,
            tmp_path,
            "--trainer.strategy",
            "ddp",
            "--trainer.devices",
            "2",
            "--trainer.max_steps",
            "6",
            "--trainer.val_check_interval",
            "3",
            *whole_validation_set,
        ),
    ]
    env = {**cli_env, "PYTHONWARNINGS": "default"}  # Lightning's warnings shown: none may ask for sync_dist
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    output = result.stderr + result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert "distributed_backend=gloo" in output and "All distributed processes registered" in output
    assert "sync_dist" not in output
    checkpoints = list(tmp_path.rglob("last.ckpt"))
    assert len(checkpoints) == 1 and load_model(checkpoints[0]).global_step == 6
    logged = [r for r in metrics(tmp_path) if r.get("val/nats_per_token")]
    assert [int(r["step"]) for r in logged] == [2, 5]

    single = build_cli(tiny_args(module_corpus, tmp_path / "single", *whole_validation_set))
    (validated,) = single.trainer.validate(
        single.model, datamodule=single.datamodule, ckpt_path=checkpoints[0], weights_only=True
    )  # the checkpoint written at the end holds the averaged weights the last validation used
    assert validated["val/nats_per_token"] == pytest.approx(float(logged[-1]["val/nats_per_token"]), rel=1e-6)
    assert validated["val/bits_per_character"] == pytest.approx(float(logged[-1]["val/bits_per_character"]), rel=1e-6)


def test_ema_updates_once_per_optimizer_step_under_gradient_accumulation(module_corpus, tmp_path):
    cli = build_cli(
        tiny_args(module_corpus, tmp_path, "--trainer.max_steps", "5", "--trainer.accumulate_grad_batches", "2")
    )
    fit(cli)
    ema = next(c for c in cli.trainer.callbacks if isinstance(c, ExponentialMovingAverage))
    assert cli.trainer.global_step == 5 and int(ema._average_model.n_averaged) == 5  # not 10 micro-batches


def test_quickstart_trains_evaluates_and_samples(module_corpus, tmp_path, capsys):
    argv = ["quickstart", "--num-samples", "2", "--sample-length", "16", "--steps", "4", "--eval-batches", "1"]
    argv += ["--time-draws", "2", *tiny_args(module_corpus, tmp_path, "--trainer.max_steps", "4")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "trained 4 steps" in out and "validation NELBO <= " in out and " bits/character " in out
    assert out.count("=== sample_") == 2


def test_quickstart_trains_block_diffusion_by_default_and_says_why(module_corpus, tmp_path, capsys):
    argv = ["quickstart", "--num-samples", "1", "--sample-length", "8", "--steps", "2", "--eval-batches", "1"]
    argv += ["--time-draws", "1", "--data.init_args.corpus", str(module_corpus), "--trainer.max_steps", "2"]
    argv += ["--trainer.limit_val_batches", "1", "--trainer.logger.init_args.save_dir", str(tmp_path)]
    assert main([*argv, "--trainer.enable_progress_bar", "false"]) == 0
    out = capsys.readouterr().out
    assert "training shakespeare_char_bd3 (block diffusion, blocks of 4" in out and "--config shakespeare_char)" in out
    checkpoint = next(tmp_path.glob("shakespeare_char_bd3/version_0/checkpoints/last.ckpt"))
    objective = load_model(str(checkpoint)).objective
    assert objective.decoding is Decoding.BLOCKS and objective.block_size == 4
    assert out.count("=== sample_") == 1


def test_a_time_conditioned_model_samples_and_infills(module_corpus, tmp_path, capsys):
    cli = build_cli(
        tiny_args(module_corpus, tmp_path, "--trainer.max_steps", "4", "--model.network.time_conditioning", "true")
    )
    fit(cli)
    checkpoint = cli.trainer.checkpoint_callback.last_model_path
    assert load_model(checkpoint).network.time_conditioned
    assert main(["sample", "--checkpoint", checkpoint, "--num", "2", "--length", "16", "--steps", "8"]) == 0
    assert main(["infill", "--checkpoint", checkpoint, "--prompt", "Shall I [MASK:5] thee", "--steps", "8"]) == 0
    out = capsys.readouterr().out
    assert out.count("=== sample_") == 2 and "Shall I " in out


def test_a_run_can_start_from_another_models_weights(module_corpus, tmp_path, capsys):
    """An autoregressive model continued with the diffusion objective: the weights carry over exactly (the first
    step's learning rate is 0 during warm-up, so the one step taken here leaves them as they came)."""
    ar = build_cli(
        tiny_args(
            module_corpus,
            tmp_path / "ar",
            "--trainer.max_steps",
            "2",
            "--model.objective",
            "discrete_diff.objectives.Autoregressive",
        )
    )
    fit(ar)
    source = ar.trainer.checkpoint_callback.last_model_path
    continued = build_cli(
        tiny_args(module_corpus, tmp_path / "mdlm", "--trainer.max_steps", "1", "--model.init_from", source)
    )
    fit(continued)
    before, after = load_model(source), load_model(continued.trainer.checkpoint_callback.last_model_path)
    assert isinstance(after.objective, MaskedDiffusion)
    for key, value in before.network.state_dict().items():
        assert torch.equal(after.network.state_dict()[key], value), key
    wider = tiny_args(module_corpus, tmp_path / "wide", "--trainer.max_steps", "1", "--model.init_from", source)
    assert main([*["train", *wider], "--model.network.d_model", "64"]) == 2
    assert "model.init_from" in capsys.readouterr().err
