"""A tighter bound for masked diffusion: importance-weighted over unmasking orders.

With a time-independent SUBS denoiser the sampler that starts from all-[MASK] and reveals one token at a time,
in a uniformly random order, draws x with p(x) = E_sigma[p_sigma(x)], p_sigma(x) = prod_i p(x_sigma(i) | the
tokens sigma(<i) revealed). The NELBO (`MaskedDiffusion.likelihood`) is E_sigma[-log p_sigma(x)] (Jensen's
inequality on that mean); with K orders drawn per sequence, -log((1/K) sum_k p_sigma_k(x)) is a bound too, never
looser in expectation, and tighter as K grows, towards -log p(x) itself (importance weighting, Burda et al. 2016,
with the uniform order as its own proposal): how much it gains is how much the orders disagree. Each order costs
one network call per token, K x n calls for a sequence of n tokens where the NELBO takes K.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from ..batch import Batch
from ..denoiser import Bidirectional, Denoiser, DenoiserInput
from ..errors import InvalidArgument
from ..process import subs_log_probs
from .bound import LikelihoodBound


@torch.no_grad()
def order_log_likelihoods(
    network: Denoiser, batch: Batch, mask_id: int, orders: int, generator: torch.Generator
) -> Tensor:
    """log p_sigma(x) of each sequence under `orders` uniformly random unmasking orders: (K, B) float64 nats.

    Every maskable token starts as [MASK]; each network call reveals one token per sequence (the next in its
    order) and adds its log-probability given the tokens revealed so far. Tokens that are not maskable stay
    visible throughout and are not scored. Under `torch.autocast` the network runs in its dtype (bf16: about twice as
    fast on a CPU with bf16 instructions); log-probabilities are still taken in float32 and summed in float64.
    """
    if getattr(network, "time_conditioned", False):
        raise InvalidArgument("network", "is time-conditioned: the order bound holds for time-independent ones")
    x0, maskable = batch.input_ids, batch.maskable  # (B, L)
    rows = torch.arange(x0.shape[0], device=x0.device)  # (B,)
    counts = maskable.sum(-1)  # (B,)
    attention = Bidirectional(batch.attention_mask)
    t = torch.ones(x0.shape[0], device=x0.device)  # (B,) read by no time-independent network
    totals = []
    for _ in range(orders):
        keys = torch.rand(x0.shape, generator=generator, dtype=torch.float64).to(x0.device)  # (B, L)
        order = keys.masked_fill(~maskable, math.inf).argsort(-1)  # (B, L): maskable positions first, shuffled
        xt = x0.masked_fill(maskable, mask_id)  # (B, L)
        total = torch.zeros(x0.shape[0], dtype=torch.float64, device=x0.device)  # (B,)
        for step in range(int(counts.max())):
            active = step < counts  # (B,) sequences with a token left to reveal
            position = order[:, step]  # (B,)
            score_at = torch.zeros_like(maskable)
            score_at[rows[active], position[active]] = True
            logits = network(DenoiserInput(xt, attention, t=t, class_labels=batch.class_labels, score_at=score_at))
            log_probs = subs_log_probs(logits, mask_id)  # (N, V), one row per active sequence
            target = x0[rows[active], position[active]]  # (N,)
            total[active] += log_probs.gather(-1, target[:, None])[:, 0].double()
            xt[rows[active], position[active]] = target
        totals.append(total)
    return torch.stack(totals)  # (K, B)


def importance_weighted_bound(
    network: Denoiser,
    batches: Iterable[Batch],
    mask_id: int,
    *,
    orders: int = 16,
    seed: int = 0,
    max_batches: int | None = None,
) -> LikelihoodBound:
    """-log((1/K) sum_k p_sigma_k(x)) summed over the sequences, per scored token, K = `orders`. Its standard
    error is the jackknife's over each sequence's K orders (K >= 2)."""
    if orders < 1:
        raise InvalidArgument("orders", f"must be at least 1, got {orders}")
    generator = torch.Generator().manual_seed(seed)
    nats, tokens, variance = [], [], 0.0
    for index, batch in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        log_p = order_log_likelihoods(network, batch, mask_id, orders, generator).cpu()  # (K, B)
        nats.append(weighted_nats(log_p))
        tokens.append(batch.maskable.sum(-1).cpu().double())
        if orders > 1:
            left_out = torch.stack([weighted_nats(log_p[torch.arange(orders) != k]) for k in range(orders)])  # (K, B)
            variance += float(((left_out - left_out.mean(0)) ** 2).sum()) * (orders - 1) / orders
    if not nats or int(torch.cat(tokens).sum()) == 0:
        raise ValueError("no tokens to evaluate")
    total = int(torch.cat(tokens).sum())
    rate = float(torch.cat(nats).sum()) / total
    error, source = (math.sqrt(variance) / total, "draws") if orders > 1 else (None, "")
    return LikelihoodBound(rate, error, len(torch.cat(nats)), total, time_draws=0, error_from=source, orders=orders)


def weighted_nats(log_p: Tensor) -> Tensor:
    """(K, B) log p_sigma_k(x) -> (B,) -log of their mean."""
    return -(torch.logsumexp(log_p, 0) - math.log(log_p.shape[0]))
