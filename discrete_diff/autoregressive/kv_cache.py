"""Key-value cached decoding with a causal `Transformer`'s own weights: one new token per network call.

Each call runs only the new positions through the blocks and attends to the keys and values kept from
earlier calls, so generating L tokens costs O(L) token-passes instead of the O(L^2) of recomputing the
prefix every step. This is what makes the baseline's sampling time an honest comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from ..models.transformer import Attention, Block, Transformer
from ..sampling.categorical import sample_categorical
from ..sampling.filters import apply_filters
from ..sampling.loop import SamplingResult


class KVCache:
    """Keys and values of every position decoded so far, per layer; `length` is the next position."""

    def __init__(self, network: Transformer) -> None:
        if not network.config.causal:
            raise ValueError("key-value caching needs a causal network (the autoregressive baseline)")
        if network.time_conditioned:
            raise ValueError("key-value caching needs a network without time conditioning")
        self.network = network
        self.keys: list[Tensor | None] = [None] * len(network.blocks)
        self.values: list[Tensor | None] = [None] * len(network.blocks)
        self.length = 0

    @torch.no_grad()
    def forward(self, input_ids: Tensor) -> Tensor:
        """Append input_ids (B, T) at positions length .. length + T - 1; returns their logits (B, T, V)."""
        new = input_ids.shape[1]
        if self.length + new > self.network.config.max_length:
            raise ValueError(f"decoding past the model's max_length {self.network.config.max_length}")
        x = self.network.embed(input_ids)  # (B, T, d_model)
        for layer, block in enumerate(self.network.blocks):
            x = self._block(layer, block, x)
        self.length += new
        return self.network.head(self.network.norm(x))

    def _block(self, layer: int, block: Block, x: Tensor) -> Tensor:
        x = x + self._attention(layer, block.attn, block.norm1(x))
        return x + block.mlp(block.norm2(x))

    def _attention(self, layer: int, attn: Attention, x: Tensor) -> Tensor:
        q, k, v = rearrange(attn.qkv(x), "b t (three h d) -> three b h t d", three=3, h=attn.n_heads)
        q, k = attn.rotary(q, offset=self.length), attn.rotary(k, offset=self.length)
        if self.keys[layer] is not None:
            k = torch.cat((self.keys[layer], k), dim=2)  # (B, H, S, D), S = positions so far
            v = torch.cat((self.values[layer], v), dim=2)
        self.keys[layer], self.values[layer] = k, v
        new, total = q.shape[2], k.shape[2]
        # New position j (absolute length + j) may attend to every cached position and to new ones up to itself.
        allowed = torch.ones(new, total, dtype=torch.bool, device=x.device).tril(diagonal=total - new)  # (T, S)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if new == 1 else allowed)  # (B, H, T, D)
        return attn.out(rearrange(y, "b h t d -> b t (h d)"))


@torch.no_grad()
def generate_autoregressive(
    network: Transformer,
    prefix: Tensor,
    length: int,
    *,
    filters: Sequence[Callable[[Tensor], Tensor]] = (),
    generator: torch.Generator | None = None,
) -> SamplingResult:
    """Extend prefix (B, P) — the start symbol, then any prompt — by `length` tokens; returns only the new ones.

    The prompt costs one call; each generated token after the first costs one more. Draws are float64
    Gumbel, like the diffusion samplers, so quality differences are not precision artefacts.
    """
    if length < 1 or prefix.shape[1] < 1:
        raise ValueError("need a non-empty prefix and length >= 1")
    generator = generator or torch.Generator(device=prefix.device).manual_seed(0)
    cache = KVCache(network)
    logits = cache.forward(prefix)[:, -1:]  # (B, 1, V)
    calls, generated = 1, []
    for position in range(length):
        token = sample_categorical(apply_filters(logits, filters), generator)  # (B, 1)
        generated.append(token)
        if position + 1 < length:
            logits = cache.forward(token)
            calls += 1
    return SamplingResult(tokens=torch.cat(generated, dim=1), network_calls=calls)
