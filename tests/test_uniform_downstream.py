"""A uniform-state model trained with the real Trainer on a tiny labelled corpus: it reports its bound with an
error, samples with every position revisable (no [MASK] ever shown to the network), takes labels and guidance, and
infills with the given tokens kept; strategies that only reveal [MASK] are refused with a one-line error."""

import pytest
import torch
from tiny_checkpoints import labelled_text_checkpoint

from discrete_diff.batch import Batch
from discrete_diff.errors import InvalidArgument, UserInputError
from discrete_diff.generation import generate
from discrete_diff.inference import load_model
from discrete_diff.infill import infill
from discrete_diff.noising import Uniform
from discrete_diff.objectives import UniformDiffusion
from discrete_diff.sampling import FirstHitting, SamplingSettings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

OBJECTIVE = [
    "  objective: {class_path: discrete_diff.objectives.UniformDiffusion}",
    "  network: {time_conditioning: true}",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_model(labelled_text_checkpoint(tmp_path_factory.mktemp("uniform"), OBJECTIVE))


class Watch:
    """Records what the network is called with."""

    def __init__(self, model):
        self.model, self.inputs = model, []
        self.forward = model.network.forward

    def __call__(self, inputs):
        self.inputs.append(inputs)
        return self.forward(inputs)


def test_the_checkpoint_keeps_the_objective_and_its_process(model):
    assert isinstance(model.objective, UniformDiffusion)
    assert isinstance(model.process, Uniform) and model.process.revises
    assert model.network.time_conditioned


def test_the_bound_is_finite_with_a_standard_error(model):
    ids = torch.tensor([model.tokenizer.encode("Shall I compare thee to a summer's day?")])
    ones = torch.ones_like(ids, dtype=torch.bool)
    bound = model.objective.likelihood(model.network, [Batch(ids, ones, ones)], model.mask_id, time_draws=4)
    assert 0 < bound.nats_per_token < 20 and bound.standard_error is not None and bound.standard_error > 0


def test_samples_never_show_mask_to_the_network_and_positions_change_more_than_once(model, monkeypatch):
    watch = Watch(model)
    monkeypatch.setattr(model.network, "forward", watch)
    frames = []
    run = generate(model, [20] * 3, settings=SamplingSettings(steps=8), label="comedy", seed=1,
                   on_step=lambda tokens, step, t: frames.append(tokens.clone()))  # fmt: skip
    assert len(watch.inputs) == 8 and all((i.ids != model.mask_id).all() for i in watch.inputs)
    assert all(len(ids) == 20 for ids in run.ids)
    changes = torch.stack([(a != b) for a, b in zip(frames[:-1], frames[1:], strict=True)]).sum(0)  # (B, L)
    assert int(changes.max()) >= 2  # a position was revised after it first changed: not a one-way reveal


def test_guidance_steers_with_the_label_and_scale_zero_is_conditional(model):
    plain = generate(model, [20] * 3, settings=SamplingSettings(steps=8), label="tragedy", seed=2)
    zero = generate(model, [20] * 3, settings=SamplingSettings(steps=8, guidance_scale=0.0), label="tragedy", seed=2)
    guided = generate(model, [20] * 3, settings=SamplingSettings(steps=8, guidance_scale=4.0), label="tragedy", seed=2)
    assert zero.ids == plain.ids and guided.ids != plain.ids
    with pytest.raises(InvalidArgument, match="steered by labels only|label to steer toward"):
        generate(model, [20], settings=SamplingSettings(steps=8, guidance_scale=2.0), seed=2)


def test_infilling_keeps_the_given_text(model):
    run = infill(model, ["To be, or [MASK:6] to be"], num=3, settings=SamplingSettings(steps=8), seed=0)
    for fill in run.infills:
        assert fill.text.startswith("To be, or ") and fill.text.endswith(" to be") and len(fill.text) == 22


def test_a_strategy_that_only_reveals_masks_is_refused(model):
    with pytest.raises(
        UserInputError, match="strategy FirstHitting reveals .*; a uniform-state diffusion model samples"
    ):
        generate(model, [10], settings=SamplingSettings(strategy=FirstHitting()), seed=0)
