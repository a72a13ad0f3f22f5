"""Logit filters on hand-made distributions, and their effect through the sampling loop."""

import pytest
import torch

from discrete_diff.models.transformer import Transformer, TransformerConfig
from discrete_diff.sampling import (
    ConfidenceUnmasking,
    RepetitionPenalty,
    SamplingSettings,
    Temperature,
    TopK,
    TopP,
    run_sampler,
)
from discrete_diff.sampling.filters import apply_filters
from discrete_diff.schedules import LogLinearSchedule

PROBS = torch.tensor([0.05, 0.5, 0.15, 0.3], dtype=torch.float64)  # sorted: 0.5, 0.3, 0.15, 0.05


def kept(filtered: torch.Tensor) -> set[int]:
    return set(torch.nonzero(torch.isfinite(filtered.flatten())).flatten().tolist())


def test_top_k_keeps_the_k_most_likely():
    logits = PROBS.log()[None, None]  # (1, 1, V)
    assert kept(TopK(2)(logits)) == {1, 3}
    assert kept(TopK(10)(logits)) == {0, 1, 2, 3}


@pytest.mark.parametrize(("p", "expected"), [(0.4, {1}), (0.7, {1, 3}), (0.9, {1, 2, 3}), (1.0, {0, 1, 2, 3})])
def test_top_p_keeps_the_smallest_set_reaching_p(p, expected):
    assert kept(TopP(p)(PROBS.log()[None, None])) == expected


def test_temperature_scales_logits():
    log_probs = apply_filters(PROBS.log()[None, None], [Temperature(0.5)])
    expected = torch.softmax(PROBS.log() / 0.5, dim=-1)
    assert torch.allclose(log_probs.exp().flatten(), expected)


def test_repetition_penalty_lowers_tokens_already_present():
    logits = torch.tensor([[[2.0, -1.0, 0.5, 0.0, 0.0]]], dtype=torch.float64)  # (1, 1, V); id 4 is [MASK]
    tokens = torch.tensor([[0, 1, 4]])  # 0 and 1 are present, [MASK] does not count
    before = torch.softmax(logits, -1).flatten()
    after = apply_filters(logits, [RepetitionPenalty(2.0, mask_id=4)], tokens).exp().flatten()
    assert after[0] < before[0] and after[1] < before[1]  # positive logit halved, negative one doubled
    assert after[2] > before[2]
    with pytest.raises(ValueError, match="needs the current tokens"):
        RepetitionPenalty(2.0, mask_id=4)(logits)


@pytest.mark.parametrize("bad", [lambda: TopK(0), lambda: TopP(0.0), lambda: TopP(1.5), lambda: Temperature(0)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        bad()


def test_greedy_confidence_sampling_ignores_the_seed():
    """Top-1 leaves one token per position and confidence fixes the order: nothing is left to chance."""
    torch.manual_seed(0)
    network = Transformer(TransformerConfig(d_model=16, n_layers=1, n_heads=2, max_length=16), vocab_size=9).eval()
    tokens = torch.full((2, 16), 8)

    def run(seed, filters):
        return run_sampler(
            network, tokens, mask_id=8, strategy=ConfidenceUnmasking(), num_steps=4, schedule=LogLinearSchedule(),
            filters=SamplingSettings(**filters).filters((), mask_id=8), generator=torch.Generator().manual_seed(seed),
        ).tokens  # fmt: skip

    assert torch.equal(run(0, {"top_k": 1}), run(1, {"top_k": 1}))
    assert not torch.equal(run(0, {}), run(1, {}))  # without the filter the seed matters
