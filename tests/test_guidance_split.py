"""Guided sampling's two ways to run the passes (one call on 2B rows, or a call per pass: Guidance.split_from) give
the same logits and therefore the same samples, on a real labelled network with padding and prompt guidance; a
stateful denoiser (not an nn.Module) always gets the one call."""

import dataclasses

import pytest
import torch

from discrete_diff.denoiser import Bidirectional, DenoiserInput
from discrete_diff.models.transformer import Transformer, TransformerConfig
from discrete_diff.sampling import Ancestral, Guidance, run_sampler
from discrete_diff.schedules import LogLinearSchedule

pytestmark = pytest.mark.usefixtures("one_thread")
VOCAB, MASK, LABELS, NULL = 12, 11, 3, 3  # label id 3 (= num_labels) is the null label
ONE_CALL, TWO_CALLS = 10**9, 1  # split_from values that force either path


class Counted(torch.nn.Module):
    """A network that records the rows of every call."""

    time_conditioned = False

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network, self.rows = network, []

    def forward(self, inputs: DenoiserInput) -> torch.Tensor:
        self.rows.append(inputs.batch_size)
        return self.network(inputs)


@pytest.fixture(scope="module")
def network() -> Counted:
    torch.manual_seed(0)
    config = TransformerConfig(d_model=32, n_layers=2, n_heads=2, max_length=24, num_labels=LABELS)
    return Counted(Transformer(config, VOCAB).eval())


def inputs(batch: int) -> tuple[DenoiserInput, Guidance]:
    """Half-masked rows of random tokens with some padding; prompt guidance hides the first two positions."""
    generator = torch.Generator().manual_seed(batch)
    ids = torch.randint(0, MASK, (batch, 24), generator=generator)  # (B, L)
    ids[torch.rand(ids.shape, generator=generator) < 0.5] = MASK
    padding = torch.ones(batch, 24, dtype=torch.bool)
    padding[::2, 20:] = False  # every other row ends early
    labels = torch.randint(0, LABELS, (batch,), generator=generator)
    hidden = torch.zeros(batch, 24, dtype=torch.bool)
    hidden[:, :2] = True
    guidance = Guidance(2.0, labels=torch.full_like(labels, NULL), hidden=hidden)
    return DenoiserInput(ids, Bidirectional(padding), t=torch.rand(batch), class_labels=labels), guidance


@pytest.mark.parametrize("batch", [1, 5, 16])
def test_one_call_and_two_calls_give_the_same_logits(network, batch):
    given, guidance = inputs(batch)
    network.rows.clear()
    one = dataclasses.replace(guidance, split_from=ONE_CALL).predict(network, given, MASK)
    two = dataclasses.replace(guidance, split_from=TWO_CALLS).predict(network, given, MASK)
    assert network.rows == [2 * batch, batch, batch]  # each path ran as it says
    assert one.shape == (2 * batch, 24, VOCAB) and torch.equal(one, two)
    # The second half is the unconditional pass: the null label with the prompt's positions hidden.
    alone = network(guidance.unconditional(given, MASK))
    assert torch.equal(two[batch:], alone) and not torch.equal(two[:batch], two[batch:])


def test_the_rows_threshold_picks_the_path_and_the_samples_agree(network):
    tokens = torch.full((6, 24), MASK)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    samples = {}
    for name, split_from in (("one", 7), ("two", 6)):  # 6 rows per pass: below 7 one call, from 6 two calls
        network.rows.clear()
        guidance = Guidance(1.5, labels=torch.full_like(labels, NULL), split_from=split_from)
        samples[name] = run_sampler(
            network, tokens, mask_id=MASK, strategy=Ancestral(), num_steps=8, schedule=LogLinearSchedule(),
            class_labels=labels, guidance=guidance,
        ).tokens  # fmt: skip
        assert set(network.rows) == ({12} if name == "one" else {6})
    assert torch.equal(samples["one"], samples["two"])


def test_a_denoiser_that_is_not_a_network_gets_one_call(network):
    """Block diffusion's cached denoiser keeps a cache of all 2B rows between calls: splitting would corrupt it."""
    calls = []

    def cached(inputs: DenoiserInput) -> torch.Tensor:
        calls.append(inputs.batch_size)
        return network(inputs)

    given, guidance = inputs(4)
    dataclasses.replace(guidance, split_from=TWO_CALLS).predict(cached, given, MASK)
    assert calls == [8]
