"""A uniform-state model through `discrete-diff export` and the pipeline: trained with the real Trainer, exported,
loaded back, it samples and infills with the uniform process, the same tokens as the checkpoint for a seed; a
directory whose objective says masked diffusion samples otherwise (the control); the masked-LM face of the
directory refuses [MASK] with one line."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import sonnet_corpus
from tiny_checkpoints import character_text_data, train
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

from discrete_diff.cli import main
from discrete_diff.denoiser import Bidirectional, DenoiserInput
from discrete_diff.generation import generate
from discrete_diff.inference import load_model, read_checkpoint
from discrete_diff.noising import Absorbing, Uniform
from discrete_diff.objectives import MaskedDiffusion
from discrete_diff.pipeline import DiffusionPipeline
from discrete_diff.sampling import SamplingSettings
from discrete_diff.specs import to_spec

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

UNIFORM = [
    "  objective: {class_path: discrete_diff.objectives.UniformDiffusion}",
    "  network: {time_conditioning: true}",
]
SETTINGS = SamplingSettings(steps=8)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A uniform-state checkpoint (the tiny config, 4 steps) and its directory, exported through the CLI."""
    root = tmp_path_factory.mktemp("uniform-export")
    checkpoint = train(root, character_text_data(sonnet_corpus(root / "corpus")), steps=4, model=UNIFORM)
    assert main(["export", "--checkpoint", checkpoint, "--out", str(root / "model")]) == 0
    return Path(checkpoint), root / "model"


def test_the_directory_records_the_uniform_process(run):
    checkpoint, directory = run
    config = json.loads((directory / "config.json").read_text())
    assert config["objective"] == read_checkpoint(checkpoint)["discrete_diff"]["objective"]
    assert config["objective"]["class_path"].endswith(".UniformDiffusion")
    assert isinstance(load_model(directory).process, Uniform)


def test_the_exported_model_samples_and_infills_as_the_checkpoint(run):
    checkpoint, directory = run
    original, exported = load_model(checkpoint), load_model(directory)
    ids = generate(original, [24] * 3, settings=SETTINGS, seed=4).ids
    assert generate(exported, [24] * 3, settings=SETTINGS, seed=4).ids == ids
    from_checkpoint, from_directory = DiffusionPipeline.from_pretrained(checkpoint), DiffusionPipeline(exported)
    assert from_directory.generate(3, 24, seed=5, steps=8) == from_checkpoint.generate(3, 24, seed=5, steps=8)
    prompt = "Shall I [MASK:6] to a summer's day?"
    fills = from_directory.infill(prompt, num=2, seed=5, steps=8)
    assert fills == from_checkpoint.infill(prompt, num=2, seed=5, steps=8)
    assert all(f.startswith("Shall I ") and f.endswith(" to a summer's day?") and len(f) == 27 + 6 for f in fills)


def test_a_directory_that_records_masked_diffusion_samples_otherwise(run, tmp_path):
    """The control: the same weights under a masked-diffusion objective sample with [MASK] reveals, other tokens."""
    checkpoint, directory = run
    altered = Path(shutil.copytree(directory, tmp_path / "masked"))
    config = json.loads((altered / "config.json").read_text())
    (altered / "config.json").write_text(json.dumps({**config, "objective": to_spec(MaskedDiffusion())}))
    masked = load_model(altered)
    assert isinstance(masked.process, Absorbing)
    ids = generate(load_model(checkpoint), [24] * 3, settings=SETTINGS, seed=4).ids
    assert generate(masked, [24] * 3, settings=SETTINGS, seed=4).ids != ids


def test_the_masked_lm_face_refuses_mask_and_answers_noisy_tokens(run):
    checkpoint, directory = run
    model = AutoModelForMaskedLM.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    with pytest.raises(ValueError, match=r"^a uniform-state diffusion model never sees \[MASK\]") as refused:
        pipeline("fill-mask", model=model, tokenizer=tokenizer)(f"Shall I {tokenizer.mask_token}ompare")
    assert "\n" not in str(refused.value)
    ids = tokenizer("Shall I compare thee", return_tensors="pt")["input_ids"]
    t = torch.full((1,), 0.3)
    with torch.no_grad():
        logits = model(input_ids=ids, t=t).logits
        expected = load_model(checkpoint).network(DenoiserInput(ids, Bidirectional(), t=t))
    assert torch.equal(logits, expected)
