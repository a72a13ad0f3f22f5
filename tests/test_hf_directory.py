"""Model directories: export a real checkpoint, load it back through transformers' Auto classes, use it everywhere."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import sonnet_corpus
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

from discrete_diff.checkpoint_format import FORMAT_VERSION
from discrete_diff.cli import main
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.denoiser import Bidirectional, DenoiserInput
from discrete_diff.inference import load_model, read_checkpoint
from discrete_diff.pipeline import DiffusionPipeline

pytestmark = pytest.mark.slow  # trains models or runs subprocesses

FRESH_PROCESS_LOAD = """
import sys
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

import discrete_diff  # registers the Auto classes; nothing else is needed

directory, text, out = sys.argv[1:]
config = AutoConfig.from_pretrained(directory)
model = AutoModelForMaskedLM.from_pretrained(directory).eval()
tokenizer = AutoTokenizer.from_pretrained(directory)
ids = tokenizer(text, return_tensors="pt")
with torch.no_grad():
    logits = model(**ids).logits
save_file({"input_ids": ids["input_ids"], "logits": logits}, out)
print(type(config).__name__, type(model).__name__, config.model_type)
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny config trained for 4 steps on a small corpus, and that checkpoint exported through the CLI."""

    root = tmp_path_factory.mktemp("hf")
    corpus = root / "corpus"
    sonnet_corpus(corpus)
    args = ["--config", "tiny", "--data.init_args.corpus", str(corpus)]
    args += ["--trainer.logger.init_args.save_dir", str(root), "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.max_steps", "4", "--trainer.val_check_interval", "2"]
    cli = build_cli(args)
    fit(cli)
    checkpoint = cli.trainer.checkpoint_callback.last_model_path
    assert main(["export", "--checkpoint", checkpoint, "--out", str(root / "model")]) == 0
    return Path(checkpoint), root / "model", corpus


def test_directory_holds_safetensors_and_a_tokenizer_only(run):
    checkpoint, directory, corpus = run
    assert sorted(p.name for p in directory.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    config = json.loads((directory / "config.json").read_text())
    meta = read_checkpoint(checkpoint)["discrete_diff"]
    assert config["model_type"] == "discrete_diff" and "auto_map" not in config
    assert config["objective"] == meta["objective"]  # the noise schedule travels inside the objective spec
    assert config["network"] == meta["network"] and config["global_step"] == 4
    assert config["domain"] == meta["domain"] == {"name": "text"} and config["format_version"] == FORMAT_VERSION


def test_fresh_process_auto_classes_give_identical_logits(run, tmp_path, cli_env):
    checkpoint, directory, corpus = run
    out = tmp_path / "logits.safetensors"
    text = "Shall I compare thee"
    command = [sys.executable, "-c", FRESH_PROCESS_LOAD, str(directory), text, str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DiscreteDiffConfig DiscreteDiffForMaskedLM discrete_diff" in result.stdout
    saved = load_file(out)
    model = load_model(checkpoint)
    assert saved["input_ids"].tolist() == [model.tokenizer(text)["input_ids"]]
    with torch.no_grad():
        expected = model.network(DenoiserInput(saved["input_ids"], Bidirectional()))  # (1, L, V)
    assert torch.equal(saved["logits"], expected)


def test_the_exported_model_follows_the_masked_lm_conventions(run):
    """`model(input_ids, attention_mask, labels=...)` returns the masked-LM loss (-100 ignored), as Trainer expects,
    and transformers' fill-mask pipeline runs on the directory."""
    _, directory, _ = run
    model = AutoModelForMaskedLM.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    encoded = tokenizer(["Shall I compare thee", "to a summer's day"], padding=True, return_tensors="pt")
    labels = encoded["input_ids"].clone()
    labels[:, ::2] = -100
    labels[encoded["attention_mask"] == 0] = -100
    with torch.no_grad():
        output = model(**encoded, labels=labels)
    kept = labels != -100
    expected = torch.nn.functional.cross_entropy(output.logits[kept].float(), labels[kept])
    assert output.loss is not None and torch.isclose(output.loss, expected)
    filled = pipeline("fill-mask", model=model, tokenizer=tokenizer)(f"Shall I {tokenizer.mask_token}ompare")
    assert len(filled) == 5 and all(f["sequence"].startswith("Shall I ") for f in filled)


def test_commands_take_a_directory_wherever_they_take_a_checkpoint(run, capsys):
    checkpoint, directory, corpus = run
    outputs = []
    evaluation = ["--data", str(corpus), "--time-draws", "2", "--max-batches", "1", "--json"]
    for source in (checkpoint, directory):
        assert main(["sample", "--checkpoint", str(source), "--num", "2", "--length", "24", "--steps", "12"]) == 0
        assert main(["eval", "--checkpoint", str(source), *evaluation]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and "=== sample_1 length=24 strategy=ancestral steps=12" in outputs[0]
    assert json.loads(outputs[0].splitlines()[-1])["unit"] == "character"


def test_pipeline_outputs_equal_the_cli_for_the_same_seed(run, capsys):
    _, directory, _ = run
    assert main(["sample", "--checkpoint", str(directory), "--num", "3", "--length", "20", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    pipeline = DiffusionPipeline.from_pretrained(directory)
    assert printed == pipeline.model.domain.format_records(pipeline.generate_records(3, 20, seed=5))
    prompt = "Shall I [MASK:6] to a summer's day?"
    assert main(["infill", "--checkpoint", str(directory), "--prompt", prompt, "--num", "2", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    fills = pipeline.infill(prompt, num=2, seed=5)
    assert printed == "".join(f"=== fill_{i} prompt={prompt} blanks=6 ===\n{fill}\n" for i, fill in enumerate(fills))
    assert all(fill.startswith("Shall I ") and fill.endswith(" to a summer's day?") for fill in fills)


def copy_of(directory: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(directory, tmp_path / "copy"))


def break_no_config(d: Path) -> None:
    (d / "config.json").unlink()


def break_unknown_type(d: Path) -> None:
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**config, "model_type": "no_such_model"}))


def break_remote_code(d: Path) -> None:
    config = json.loads((d / "config.json").read_text())
    auto_map = {"AutoModelForMaskedLM": "modeling_evil.EvilModel"}
    (d / "config.json").write_text(json.dumps({**config, "auto_map": auto_map}))
    (d / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")


def break_pickle_only(d: Path) -> None:
    torch.save(load_file(d / "model.safetensors"), d / "pytorch_model.bin")
    (d / "model.safetensors").unlink()


def break_vocabulary(d: Path) -> None:
    tokenizer = json.loads((d / "tokenizer.json").read_text())
    tokenizer["model"]["vocab"]["extra-token"] = len(tokenizer["model"]["vocab"]) + 10
    (d / "tokenizer.json").write_text(json.dumps(tokenizer))


def break_tokenizer_json(d: Path) -> None:
    (d / "tokenizer.json").write_text("{not json")


def break_weights_shape(d: Path) -> None:
    config = json.loads((d / "config.json").read_text())
    config["network"]["d_model"] = 2 * config["network"]["d_model"]
    (d / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "damage, fragments",
    [
        (break_no_config, ["no config.json"]),
        (break_unknown_type, ["'no_such_model' model, not a discrete-diff one"]),
        (break_remote_code, ["needs remote code", "refused"]),
        (break_pickle_only, ["pytorch_model.bin", "safetensors"]),
        (break_vocabulary, ["vocabulary does not match"]),
        (break_tokenizer_json, ["tokenizer.json unreadable"]),
        (break_weights_shape, ["weights do not match", "size mismatch"]),
    ],
    ids=["no-config", "unknown-type", "remote-code", "pickle-only", "vocabulary", "tokenizer-json", "weights-shape"],
)
def test_bad_directory_is_one_line_exit_2(run, tmp_path, capfd, damage, fragments):
    directory = copy_of(run[1], tmp_path)
    damage(directory)
    assert main(["sample", "--checkpoint", str(directory), "--num", "1", "--length", "8", "--steps", "2"]) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("discrete-diff: error: ")
    assert str(directory) in lines[0] and all(fragment in lines[0] for fragment in fragments), lines[0]


def test_export_refuses_to_overwrite_and_leaves_no_partial_directory(run, tmp_path, capfd):
    checkpoint, _, _ = run
    target = tmp_path / "taken"
    target.mkdir()
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(target)]) == 2
    assert "already exists" in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == [target]  # no staging directory left behind
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(target), "--overwrite"]) == 0
    assert (target / "model.safetensors").is_file()
