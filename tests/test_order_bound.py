"""The importance-weighted order bound against an exactly known toy: exact for the exact denoiser, the NELBO on
average for one order, and between the NELBO and the sampler's exact -log p(x) (enumerated here) for many."""

import itertools
import math

import pytest
import torch
from test_exactness import expected_bound
from toy import ExactDenoiser, ToyDistribution, toy_batch

from discrete_diff.batch import Batch
from discrete_diff.errors import InvalidArgument
from discrete_diff.models.transformer import Transformer, TransformerConfig
from discrete_diff.objectives.order_bound import importance_weighted_bound, order_log_likelihoods

TOY = ToyDistribution(vocab=3, length=3, seed=1)


def sharpened(xt: torch.Tensor) -> torch.Tensor:
    """The toy's conditionals cubed and renormalised, (B, L) -> (B, L, V): no joint distribution has these, so
    different unmasking orders give a sequence different probabilities."""
    cubed = TOY.conditionals(xt) ** 3
    return cubed / cubed.sum(-1, keepdim=True)


class Sharpened(ExactDenoiser):
    def forward(self, inputs):
        self.toy = type("Sharpened", (), {"conditionals": staticmethod(sharpened), "vocab": TOY.vocab})
        return super().forward(inputs)


def sampler_log_prob(conditionals, x0: torch.Tensor) -> torch.Tensor:
    """log p(x) of the one-token-at-a-time sampler in a uniformly random order, by enumerating the orders and
    reading the conditionals (B, L) -> (B, L, V) directly: (B,)."""
    probabilities = torch.zeros(len(x0), dtype=torch.float64)
    orders = list(itertools.permutations(range(TOY.length)))
    for order in orders:
        xt, product = torch.full_like(x0, TOY.mask_id), torch.ones(len(x0), dtype=torch.float64)
        for position in order:
            probs = conditionals(xt)  # (B, L, V)
            product *= probs[torch.arange(len(x0)), position, x0[:, position]]
            xt[:, position] = x0[:, position]
        probabilities += product / len(orders)
    return probabilities.log()


def test_the_exact_denoiser_gives_the_exact_likelihood_in_every_order():
    log_p = order_log_likelihoods(ExactDenoiser(TOY), toy_batch(TOY.sequences), TOY.mask_id, 5, torch.Generator())
    assert log_p.shape == (5, len(TOY.sequences))
    assert torch.allclose(log_p, TOY.log_prob(TOY.sequences).expand(5, -1), atol=2e-6)


def test_the_enumerated_sampler_is_a_distribution():
    assert sampler_log_prob(sharpened, TOY.sequences).exp().sum() == pytest.approx(1.0)
    assert torch.allclose(sampler_log_prob(TOY.conditionals, TOY.sequences), TOY.log_prob(TOY.sequences))


def test_one_order_is_the_nelbo_on_average_and_more_orders_tighten_towards_the_sampler():
    denoiser = Sharpened(TOY)
    x0 = TOY.sequences.repeat(20, 1)  # (27 * 20, 3)
    exact = -sampler_log_prob(sharpened, x0).sum().item() / x0.numel()
    nelbo = expected_bound(denoiser, TOY).mean().item() / TOY.length  # enumerated: no Monte Carlo error
    one_order = -order_log_likelihoods(denoiser, toy_batch(x0), TOY.mask_id, 1, torch.Generator())[0] / TOY.length
    assert one_order.mean().item() == pytest.approx(nelbo, abs=4 * one_order.std().item() / len(x0) ** 0.5)
    bounds = {k: importance_weighted_bound(denoiser, [toy_batch(x0)], TOY.mask_id, orders=k) for k in (1, 4, 64)}
    assert nelbo - exact > 0.02  # the gap the weighting closes is real at this mix
    for fewer, more in ((1, 4), (4, 64)):
        assert bounds[more].nats_per_token < bounds[fewer].nats_per_token - 0.005
    tightest = bounds[64]  # above the sampler's -log p(x) in expectation; this estimate within its error of it
    assert exact - 3 * tightest.standard_error <= tightest.nats_per_token < exact + 0.1 * (nelbo - exact)
    assert bounds[64].standard_error < bounds[4].standard_error and bounds[64].orders == 64


def test_visible_tokens_condition_and_are_not_scored():
    x0 = TOY.sequences  # (27, 3); the last position stays visible, as a special token would
    maskable = torch.ones_like(x0, dtype=torch.bool)
    maskable[:, -1] = False
    batch = Batch(x0, torch.ones_like(maskable), maskable)
    log_p = order_log_likelihoods(ExactDenoiser(TOY), batch, TOY.mask_id, 3, torch.Generator())
    last = torch.stack([TOY.probs[TOY.sequences[:, -1] == v].sum() for v in range(TOY.vocab)])  # p(x_3 = v)
    assert torch.allclose(log_p, (TOY.log_prob(x0) - last[x0[:, -1]].log()).expand(3, -1), atol=2e-6)
    bound = importance_weighted_bound(ExactDenoiser(TOY), [batch], TOY.mask_id, orders=3)
    assert bound.tokens == 2 * len(x0)


def test_padding_is_not_seen():
    torch.manual_seed(0)
    network = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, max_length=16), vocab_size=7).eval()
    ids = torch.tensor([[1, 2, 3, 4, 5, 1], [3, 3, 2, 0, 0, 0]])
    real = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    maskable = real.clone()
    maskable[1, 1:] = False  # one token to score in the padded row: a single order, comparable exactly

    def scored(attention: torch.Tensor) -> torch.Tensor:
        return order_log_likelihoods(network, Batch(ids, attention, maskable), 6, 3, torch.Generator())[:, 1]

    alone = Batch(ids[1:, :3], real[1:, :3], maskable[1:, :3])
    expected = order_log_likelihoods(network, alone, 6, 3, torch.Generator())[:, 0]
    assert torch.allclose(scored(real), expected, atol=1e-5)
    assert (scored(torch.ones_like(real)) - expected).abs().min() > 1e-4  # a leak would show


def test_bf16_autocast_runs_the_network_in_bf16_and_keeps_the_likelihoods_close():
    torch.manual_seed(0)
    network = Transformer(TransformerConfig(d_model=32, n_layers=2, n_heads=2, max_length=16), vocab_size=9).eval()
    ids = torch.randint(0, 8, (6, 12))
    batch = Batch(ids, torch.ones_like(ids, dtype=torch.bool), torch.ones_like(ids, dtype=torch.bool))
    full = order_log_likelihoods(network, batch, 8, 2, torch.Generator().manual_seed(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = order_log_likelihoods(network, batch, 8, 2, torch.Generator().manual_seed(3))
    assert bf16.dtype == torch.float64 and not torch.equal(bf16, full)  # the network ran in bf16: rounding shows
    assert torch.allclose(bf16, full, rtol=2e-2)  # the same orders: per-sequence log-likelihoods agree closely


def test_a_time_conditioned_network_is_refused():
    class TimeConditioned(ExactDenoiser):
        time_conditioned = True

    with pytest.raises(InvalidArgument, match="time-conditioned"):
        order_log_likelihoods(TimeConditioned(TOY), toy_batch(TOY.sequences), TOY.mask_id, 1, torch.Generator())
    with pytest.raises(InvalidArgument, match="at least 1"):
        importance_weighted_bound(ExactDenoiser(TOY), [toy_batch(TOY.sequences)], TOY.mask_id, orders=0)
    assert math.isfinite(importance_weighted_bound(ExactDenoiser(TOY), [toy_batch(TOY.sequences)], 3).nats_per_token)
