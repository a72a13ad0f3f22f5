"""Left-to-right decoding for the autoregressive baseline, one new token per network call (key-value cached).

Each call runs only the new positions through the network and attends to the keys and values kept from earlier
calls (the transformer's own attention reads the cache), so generating L tokens costs O(L) token-passes instead
of the O(L^2) of recomputing the prefix every step. This is what makes the baseline's sampling time honest.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..denoiser import Causal, DenoiserInput
from ..models.kv_cache import KVCache
from .categorical import sample_categorical
from .filters import LogitFilter, apply_filters
from .loop import SamplingResult


@torch.no_grad()
def generate_autoregressive(
    network: torch.nn.Module,
    prefix: Tensor,
    length: int,
    *,
    filters: Sequence[LogitFilter] = (),
    class_labels: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> SamplingResult:
    """Extend prefix (B, P) — the start symbol, then any prompt — by `length` tokens; returns only the new ones.

    `network` is any denoiser whose forward takes a `KVCache` (the rotary transformer's does). The prompt costs
    one call; each generated token after the first costs one more. Draws are float64 Gumbel, like the diffusion
    samplers, so quality differences are not precision artefacts.
    """
    if length < 1 or prefix.shape[1] < 1:
        raise ValueError("need a non-empty prefix and length >= 1")
    if prefix.shape[1] + length - 1 > network.config.max_length:
        raise ValueError(f"decoding past the model's max_length {network.config.max_length}")
    generator = generator or torch.Generator(device=prefix.device).manual_seed(0)
    cache = KVCache(len(network.blocks))
    logits = network(DenoiserInput(prefix, Causal(), class_labels=class_labels), cache=cache)[:, -1:]  # (B, 1, V)
    calls, generated = 1, []
    for position in range(length):
        token = sample_categorical(apply_filters(logits, filters), generator)  # (B, 1)
        generated.append(token)
        if position + 1 < length:
            logits = network(DenoiserInput(token, Causal(), class_labels=class_labels), cache=cache)
            calls += 1
    return SamplingResult(tokens=torch.cat(generated, dim=1), network_calls=calls)
