"""Labels and guidance through the library, the command line and the pipeline, on tiny labelled models trained with
the real Trainer: the label vocabulary travels in checkpoints and exported directories, unknown labels are one-line
errors, w = 0 reproduces conditional samples, and every strategy, infilling and block diffusion take guidance."""

import json

import pytest
import torch
from tiny_checkpoints import labelled_protein_checkpoint, labelled_text_checkpoint, text_checkpoint

from discrete_diff.cli import main
from discrete_diff.denoiser import Bidirectional, DenoiserInput
from discrete_diff.errors import InvalidArgument
from discrete_diff.generation import generate
from discrete_diff.hf.export import save_pretrained
from discrete_diff.inference import load_model
from discrete_diff.infill import infill
from discrete_diff.pipeline import DiffusionPipeline
from discrete_diff.sampling import STRATEGIES, SamplingSettings, strategy_named

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def genre_model(tmp_path_factory):
    return labelled_text_checkpoint(tmp_path_factory.mktemp("genre"))


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory):
    return text_checkpoint(tmp_path_factory.mktemp("plain"))


def test_the_label_vocabulary_travels_in_checkpoints_and_exported_directories(genre_model, tmp_path):
    model = load_model(genre_model)
    assert model.labels.names == ("comedy", "tragedy")
    assert model.network.labels.num_embeddings == 3  # two labels and the null label
    exported = save_pretrained(model, tmp_path / "exported")
    assert json.loads((exported / "config.json").read_text())["data"]["labels"] == ["comedy", "tragedy"]
    assert load_model(exported).labels.names == ("comedy", "tragedy")
    assert DiffusionPipeline.from_pretrained(exported).labels == ["comedy", "tragedy"]


def test_an_unknown_label_lists_the_known_ones(genre_model, plain_model, capsys):
    model = load_model(genre_model)
    with pytest.raises(InvalidArgument, match="label 'farce' is unknown; known labels: comedy, tragedy"):
        generate(model, [10], label="farce")
    assert main(["sample", "--checkpoint", genre_model, "--label", "farce", "--num", "1", "--length", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["discrete-diff: error: --label 'farce' is unknown; known labels: comedy, tragedy"]
    assert main(["sample", "--checkpoint", plain_model, "--label", "comedy", "--num", "1", "--length", "8"]) == 2
    assert "this model was trained without labels" in capsys.readouterr().err


def test_guidance_at_scale_zero_reproduces_conditional_samples(genre_model):
    model = load_model(genre_model)
    plain = generate(model, [30] * 4, settings=SamplingSettings(steps=16), label="comedy", seed=3)
    zero = SamplingSettings(steps=16, guidance_scale=0.0, guidance_schedule="cosine")
    assert generate(model, [30] * 4, settings=zero, label="comedy", seed=3).ids == plain.ids
    guided = generate(model, [30] * 4, settings=SamplingSettings(steps=16, guidance_scale=2.0), label="comedy", seed=3)
    assert guided.ids != plain.ids and "label=comedy" in guided.records[0].description
    assert "guidance_scale=2.0 guidance_schedule=constant" in guided.records[0].description


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_samples_with_guidance_on_a_real_network(genre_model, name):
    model = load_model(genre_model)
    settings = SamplingSettings(strategy=strategy_named(name), steps=12, guidance_scale=1.5, guidance_schedule="linear")
    run = generate(model, [20, 25], settings=settings, label="tragedy", seed=0)
    assert [len(ids) for ids in run.ids] == [20, 25] and model.mask_id not in run.ids[0] + run.ids[1]


def test_guidance_needs_a_label_to_steer_toward_unless_infilling(genre_model, plain_model):
    model = load_model(genre_model)
    settings = SamplingSettings(steps=8, guidance_scale=1.0)
    with pytest.raises(InvalidArgument, match="guidance_scale needs a label to steer toward \\(known labels: comedy"):
        generate(model, [10], settings=settings)
    with pytest.raises(InvalidArgument, match="needs a prompt's given tokens to steer toward: this model was trained"):
        generate(load_model(plain_model), [10], settings=settings)
    # Infilling steers toward the prompt (prompt guidance): an unlabelled model takes a guidance scale there.
    run = infill(load_model(plain_model), ["Shall I [MASK:6] thee"], settings=settings, num=2)
    assert all(fill.text.startswith("Shall I ") and fill.text.endswith(" thee") for fill in run.infills)
    run = infill(model, ["Shall I [MASK:6] thee"], settings=settings, label="comedy", num=2)
    assert all(len(fill.fills[0]) == 6 for fill in run.infills)


def test_the_command_line_and_the_pipeline_take_a_label_and_guidance(genre_model, capsys):
    args = ["--checkpoint", genre_model, "--num", "2", "--seed", "1", "--label", "comedy", "--guidance-scale", "2"]
    assert main(["sample", *args, "--length", "20", "--steps", "8", "--guidance-schedule", "cosine"]) == 0
    printed = capsys.readouterr().out
    pipe = DiffusionPipeline.from_pretrained(genre_model)
    texts = pipe.generate(2, 20, seed=1, label="comedy", guidance_scale=2.0, steps=8, guidance_schedule="cosine")
    assert all(text in printed for text in texts)
    assert main(["infill", *args, "--prompt", "Shall I [MASK:5] thee", "--steps", "8"]) == 0
    assert printed != capsys.readouterr().out
    fills = pipe.infill("Shall I [MASK:5] thee", num=2, label="tragedy", guidance_scale=1.0, steps=8)
    assert all(len(fill) == len("Shall I  thee") + 5 for fill in fills)


def test_labelled_proteins_generate_per_label_and_are_judged_per_label(tmp_path, capsys):
    checkpoint = labelled_protein_checkpoint(tmp_path)
    model = load_model(checkpoint)
    assert model.labels.names == ("alpha", "beta")
    run = generate(model, [20, 22, 24], settings=SamplingSettings(steps=10, guidance_scale=1.0), label="beta")
    assert [len(r.text) for r in run.records] == [20, 22, 24] and "label=beta" in run.records[0].description
    fills = infill(model, ["[3-6]WWC[3-6]"], settings=SamplingSettings(steps=10, guidance_scale=1.0), label="alpha")
    assert "WWC" in fills.infills[0].text
    generated = model.domain.write_records(tmp_path / "generated.fasta", run.records)
    args = ["evaluate-proteins", "--generated", str(generated), "--checkpoint", checkpoint, "--use-recorded-data"]
    assert main([*args, "--json", str(tmp_path / "beta.json")]) == 2
    assert "the checkpoint's model is labelled: give --label, one of alpha, beta" in capsys.readouterr().err
    assert main([*args, "--label", "beta", "--json", str(tmp_path / "beta.json")]) == 0
    counts = json.loads((tmp_path / "beta.json").read_text())["counts"]
    assert counts["generated"] == 3 and counts["train"] + counts["held_out"] == 15  # beta's records only


def test_block_diffusion_models_condition_and_guide(tmp_path):
    objective = ["  objective:", "    class_path: discrete_diff.objectives.BlockDiffusion",
                 "    init_args: {block_size: 8}"]  # fmt: skip
    model = load_model(labelled_text_checkpoint(tmp_path, objective))
    settings = SamplingSettings(steps=64, guidance_scale=2.0)
    run = generate(model, [40, 100], settings=settings, label="comedy", at_eos="ban")  # past the window of 64
    assert [len(ids) for ids in run.ids] == [40, 100]
    plain = generate(model, [40], settings=SamplingSettings(steps=64), label="comedy", at_eos="ban")
    zero = generate(model, [40], settings=SamplingSettings(steps=64, guidance_scale=0.0), label="comedy", at_eos="ban")
    assert plain.ids == zero.ids
    continued = infill(model, ["Shall I [MASK:12]"], settings=settings, label="tragedy")
    assert continued.infills[0].text.startswith("Shall I")


def test_a_labelled_network_called_without_labels_is_its_unconditional_model(genre_model):
    network = load_model(genre_model).network
    ids = torch.randint(0, 10, (2, 16))
    null = torch.full((2,), network.num_labels)
    implicit = network(DenoiserInput(ids, Bidirectional()))
    assert torch.equal(implicit, network(DenoiserInput(ids, Bidirectional(), class_labels=null)))


def test_an_autoregressive_model_conditions_on_a_label_but_takes_no_guidance(tmp_path):
    objective = ["  objective: {class_path: discrete_diff.objectives.Autoregressive}"]
    model = load_model(labelled_text_checkpoint(tmp_path, objective))
    comedy = generate(model, [30, 30], label="comedy", seed=2)
    assert [len(ids) for ids in comedy.ids] == [30, 30] and comedy.ids != generate(model, [30, 30], seed=2).ids
    with pytest.raises(InvalidArgument, match="guidance_scale applies to diffusion models"):
        generate(model, [30], settings=SamplingSettings(guidance_scale=1.0), label="comedy")
