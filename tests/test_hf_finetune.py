"""Pretrained transformers masked LMs as denoisers: a tiny random ESM-2 on proteins, a tiny BERT on text.

Both go through the one training path (LightningCLI + DiffusionModule + the NELBO) and the one sampling loop,
from directories saved with `save_pretrained`: the path a user with a downloaded model takes.
"""

import json
import math
import shutil

import pytest
import torch
from conftest import SONNETS, sonnet_corpus
from hf_tiny import bert_directory, esm_directory, fasta_file, finetune_config, fixed_nelbo
from transformers import AutoModelForMaskedLM

from discrete_diff.cli import main
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.denoiser import Bidirectional, DenoiserInput
from discrete_diff.errors import UserInputError
from discrete_diff.hf.export import save_pretrained
from discrete_diff.inference import load_model, read_checkpoint
from discrete_diff.models.pretrained import MaskedLMAdapter, PretrainedMaskedLM, pretrained_denoiser
from discrete_diff.pipeline import DiffusionPipeline
from discrete_diff.protein.fasta import read_fasta
from discrete_diff.protein.tokenizer import CANONICAL_AMINO_ACIDS, build_protein_tokenizer
from discrete_diff.text.tokenizers import CharacterTokenizer, PretrainedTokenizer

pytestmark = pytest.mark.slow  # trains models or runs subprocesses

STEPS = 30


def fine_tune(tmp, model_dir, data_yaml):
    """Score a fixed validation batch with the untouched model, fine-tune, and score it again with the EMA."""
    config = finetune_config(tmp / "config.yaml", tmp / "runs", model_dir, data_yaml, STEPS)
    cli = build_cli(["--config", str(config)])
    cli.datamodule.prepare_data()
    cli.datamodule.setup("fit")
    batch = next(iter(cli.datamodule.validation_batches(8)))
    tokenizer = cli.datamodule.tokenizer
    untouched = pretrained_denoiser(PretrainedMaskedLM(str(model_dir)), tokenizer)
    before = fixed_nelbo(untouched, batch, cli.model.objective, tokenizer.mask_token_id)
    fit(cli)
    checkpoint = cli.trainer.checkpoint_callback.last_model_path
    model = load_model(checkpoint)
    after = fixed_nelbo(model.network, batch, model.objective, model.mask_id)
    return cli, checkpoint, model, before, after


@pytest.fixture(scope="module")
def esm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("esm")
    model_dir = esm_directory(tmp / "esm2_tiny")
    data = f"""  class_path: discrete_diff.training.protein_data.ProteinDataModule
  init_args: {{corpus: {fasta_file(tmp / "proteins.fasta")}, max_length: 64, batch_size: 8, val_fraction: 0.25}}"""
    return (*fine_tune(tmp, model_dir, data), model_dir)


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bert")
    corpus = tmp / "corpus"
    sonnet_corpus(corpus, copies=4)
    model_dir = bert_directory(tmp / "bert_tiny")
    data = f"""  class_path: discrete_diff.training.text_data.TextDataModule
  init_args:
    corpus: {corpus}
    tokenizer: {{class_path: discrete_diff.text.tokenizers.PretrainedTokenizer, init_args: {{path: {model_dir}}}}}
    max_length: 32
    batch_size: 8"""
    return (*fine_tune(tmp, model_dir, data), model_dir)


def test_esm2_directory_fine_tunes_with_the_nelbo(esm_run):
    cli, _, model, before, after = esm_run[:5]
    assert isinstance(model.network, MaskedLMAdapter)
    # The ESM-2 vocabulary order of the protein tokenizer: the directory is used as is, nothing added.
    assert model.network.backbone.get_input_embeddings().num_embeddings == len(build_protein_tokenizer()) == 33
    # The same held-out batch, times and masks before and after: a deterministic comparison.
    assert abs(before - math.log(33)) < 0.05 and after < before, (before, after)  # random weights: about uniform


def test_esm2_checkpoint_loads_safely_and_exports(esm_run, tmp_path):
    _, checkpoint, model, _, _, _ = esm_run
    meta = read_checkpoint(checkpoint)["discrete_diff"]  # torch.load(weights_only=True)
    assert meta["network"]["masked_lm"]["model_type"] == "esm"
    assert meta["network"]["masked_lm"]["token_dropout"] is False
    directory = save_pretrained(model, tmp_path / "exported")
    exported = AutoModelForMaskedLM.from_pretrained(directory).eval()
    tokens = torch.randint(4, 24, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(exported(tokens).logits, model.network(DenoiserInput(tokens, Bidirectional())))
    assert sum(json.loads((directory / "config.json").read_text())["data"]["lengths"]["count"]) == 3  # 3 of 4 train


def test_esm2_samples_and_infills_and_the_pipeline_matches_the_cli(esm_run, tmp_path, capsys):
    _, _, model, _, _, _ = esm_run
    directory = save_pretrained(model, tmp_path / "exported")
    out = tmp_path / "samples.fasta"
    cli_args = ["--num", "3", "--length", "12", "--seed", "2", "--steps", "10", "--out", str(out)]
    assert main(["generate", "--checkpoint", str(directory), *cli_args]) == 0
    pipeline = DiffusionPipeline.from_pretrained(directory)
    records = pipeline.generate_records(3, 12, seed=2, steps=10)
    written, _ = read_fasta(out)
    assert [(r.description, r.sequence) for r in written] == [(r.description, r.text) for r in records]
    assert all(len(r.text) == 12 and set(r.text) <= set(CANONICAL_AMINO_ACIDS) for r in records)
    motif = "MKTAYIAK"
    fills = pipeline.infill(f"[3-5]{motif}[3-5]", num=2, seed=1, steps=8)
    assert len(fills) == 2
    for fill in fills:
        assert motif in fill and 8 + 6 <= len(fill) <= 8 + 10 and set(fill) <= set(CANONICAL_AMINO_ACIDS)


def test_bert_directory_fine_tunes_on_text(bert_run):
    cli, _, model, before, after, model_dir = bert_run
    assert isinstance(model.network, MaskedLMAdapter)
    vocab = json.loads((model_dir / "tokenizer.json").read_text())["model"]["vocab"]
    # Its own tokenizer, its own ids: [CLS]/[SEP] serve as [BOS]/[EOS]; nothing was added.
    assert len(model.tokenizer) == len(vocab) and model.tokenizer.mask_token_id == vocab["[MASK]"]
    assert model.tokenizer.eos_token_id == vocab["[SEP]"] and model.tokenizer.bos_token_id == vocab["[CLS]"]
    assert abs(before - math.log(len(model.tokenizer))) < 0.05 and after < before, (before, after)


def test_bert_samples_and_infills(bert_run):
    _, checkpoint, _, _, _, _ = bert_run
    pipeline = DiffusionPipeline.from_pretrained(checkpoint)
    samples = pipeline.generate(2, 24, seed=0, steps=12)
    assert len(samples) == 2 and all(samples) and not any("[MASK]" in s for s in samples)
    fills = pipeline.infill("shall i [MASK:6] thee", num=2, seed=0, steps=8)
    assert all(fill.startswith("shall i ") and fill.endswith(" thee") for fill in fills), fills


def test_tokenizer_without_mask_token_is_grown_with_a_warning(tmp_path, caplog):
    model_dir = bert_directory(tmp_path / "no_mask", with_mask=False)
    rows = AutoModelForMaskedLM.from_pretrained(model_dir).get_input_embeddings().num_embeddings
    tokenizer = PretrainedTokenizer(str(model_dir)).build(lambda: [])
    network = pretrained_denoiser(PretrainedMaskedLM(str(model_dir)), tokenizer)
    assert tokenizer.mask_token_id == rows and len(tokenizer) == rows + 1
    assert network.backbone.get_input_embeddings().num_embeddings == rows + 1
    assert "no mask token" in caplog.text and "growing the embeddings" in caplog.text
    with pytest.raises(UserInputError, match="add_tokens is false"):
        pretrained_denoiser(PretrainedMaskedLM(str(model_dir), add_tokens=False), tokenizer)


def test_tokenizer_without_mask_token_refused_when_disabled_is_one_line_exit_2(tmp_path, small_corpus, capfd):
    model_dir = bert_directory(tmp_path / "no_mask", with_mask=False)
    data = f"""  class_path: discrete_diff.training.text_data.TextDataModule
  init_args:
    corpus: {small_corpus}
    tokenizer:
      class_path: discrete_diff.text.tokenizers.PretrainedTokenizer
      init_args: {{path: {model_dir}, add_mask_token: false}}"""
    config = finetune_config(tmp_path / "config.yaml", tmp_path / "runs", model_dir, data, 2)
    capfd.readouterr()  # building the directory printed progress bars
    assert main(["train", "--config", str(config)]) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert lines == [f"discrete-diff: error: {model_dir}: the tokenizer has no mask token and add_mask_token is false"]


def test_vocabulary_that_does_not_match_the_model_is_refused(tmp_path):
    model_dir = esm_directory(tmp_path / "esm")
    characters = CharacterTokenizer().build(lambda: [SONNETS])
    with pytest.raises(UserInputError, match="vocabulary does not match the tokenizer in use"):
        pretrained_denoiser(PretrainedMaskedLM(str(model_dir)), characters)


def test_remote_code_and_pickle_only_directories_are_refused(tmp_path):
    tokenizer = build_protein_tokenizer()
    remote = esm_directory(tmp_path / "remote")
    config = json.loads((remote / "config.json").read_text())
    config["auto_map"] = {"AutoModelForMaskedLM": "modeling_evil.Evil"}
    (remote / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserInputError, match="needs remote code"):
        pretrained_denoiser(PretrainedMaskedLM(str(remote)), tokenizer)
    pickled = esm_directory(tmp_path / "pickled")
    model = AutoModelForMaskedLM.from_pretrained(pickled)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    with pytest.raises(UserInputError, match="pytorch_model.bin .*safetensors"):
        pretrained_denoiser(PretrainedMaskedLM(str(pickled)), tokenizer)
    shutil.rmtree(pickled)
    with pytest.raises(UserInputError, match="model directory not found"):
        pretrained_denoiser(PretrainedMaskedLM(str(pickled)), tokenizer)
