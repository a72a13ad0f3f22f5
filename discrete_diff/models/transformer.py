"""A pre-norm transformer over token ids with rotary positions: the denoiser, and the AR baseline's network.

The attention pattern (bidirectional, causal, block-causal, explicit) comes with each call in `DenoiserInput`,
so one set of weights serves every objective; a `KVCache` lets a call run only new positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from einops import rearrange
from torch import Tensor, nn

from ..attention_kernels import AttentionKernel, DenseKernel
from ..denoiser import DenoiserInput
from .kv_cache import KVCache


@dataclass
class TransformerConfig:
    """Shape of the network. The vocabulary size comes from the tokenizer, not from here."""

    d_model: int = 256
    """Width of the residual stream."""
    n_layers: int = 6
    """Number of transformer blocks."""
    n_heads: int = 8
    """Attention heads; d_model must divide evenly among them."""
    mlp_ratio: float = 4.0
    """Hidden width of each MLP as a multiple of d_model."""
    max_length: int = 1024
    """Longest sequence trained on; the rotary table is built for it (longer positions are computed on use)."""
    dropout: float = 0.0
    """Dropout on attention and MLP outputs; 0 for the short CPU runs this library is tuned for."""
    time_conditioning: bool = False
    """Feed t to the network. Off by default: with SUBS the optimal denoiser ignores t, and a
    time-independent network is what lets samplers reuse a forward pass when no token changed."""
    num_labels: int = 0
    """Class labels the network is conditioned on (0: none); label id num_labels is the null label."""
    rope_base: float = 10000.0
    """Base of the rotary frequencies."""

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("the head width d_model / n_heads must be even for rotary embeddings")
        if min(self.d_model, self.n_layers, self.n_heads, self.max_length) <= 0:
            raise ValueError("d_model, n_layers, n_heads and max_length must be positive")
        if self.num_labels < 0:
            raise ValueError(f"num_labels must be non-negative, got {self.num_labels}")


class Rotary(nn.Module):
    """Rotary position embedding in the half-split layout: channel j pairs with channel j + D/2.

    (The interleaved layout pairs 2j with 2j + 1; the two differ by a fixed permutation of the query and key
    channels, which is how old checkpoints are converted.) Tables are kept per dtype, so bf16 runs never cast.
    """

    def __init__(self, head_dim: int, max_length: int, base: float) -> None:
        super().__init__()
        self.head_dim, self.base = head_dim, base
        cos, sin = self._angles(torch.arange(max_length))
        self.register_buffer("cos", cos, persistent=False)  # (L, D/2)
        self.register_buffer("sin", sin, persistent=False)
        self._tables: dict[torch.dtype, tuple[Tensor, Tensor]] = {}

    def _angles(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        inv_freq = self.base ** (-torch.arange(0, self.head_dim, 2, device=positions.device).float() / self.head_dim)
        angles = torch.outer(positions.float(), inv_freq)  # (L, D/2)
        return angles.cos(), angles.sin()

    def _apply(self, fn, recurse=True):  # a device or dtype move makes the per-dtype copies stale
        self._tables = {}
        return super()._apply(fn, recurse)

    def tables(self, positions: Tensor | None, length: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """cos and sin (L, D), both halves repeated, in `dtype`, for `positions` (L,) or None = 0..length-1."""
        if positions is not None and int(positions.max()) >= self.cos.shape[0]:
            cos, sin = self._angles(positions.to(self.cos.device))
            cos, sin = cos.to(dtype), sin.to(dtype)
        else:
            if dtype not in self._tables:
                self._tables[dtype] = (self.cos.to(dtype), self.sin.to(dtype))
            table_cos, table_sin = self._tables[dtype]
            pick = slice(0, length) if positions is None else positions
            cos, sin = table_cos[pick], table_sin[pick]  # (L, D/2)
        return torch.cat((cos, cos), -1), torch.cat((sin, sin), -1)  # (L, D)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """x: (B, H, L, D); cos, sin: (L, D) from `tables`."""
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)  # (B, H, L, D)
        return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.out = nn.Linear(config.d_model, config.d_model, bias=False)
        self.dropout = config.dropout

    def forward(
        self,
        x: Tensor,
        rotary: tuple[Rotary, Tensor, Tensor],
        kernel: AttentionKernel,
        cache: tuple[KVCache, int, bool] | None = None,
        queries: int | None = None,
    ) -> Tensor:
        """x: (B, L, d_model) -> (B, Q, d_model) for the first Q = `queries` positions (default all L); `kernel`
        attends over S = cached + L keys (the pattern's, built once per pass).

        `cache` is (KVCache, layer, update): cached keys and values are prepended; with update the new ones are
        stored too.
        """
        q, k, v = rearrange(self.qkv(x), "b l (three h d) -> three b h l d", three=3, h=self.n_heads)
        module, cos, sin = rotary
        q, k = module(q[:, :, :queries], cos[:queries], sin[:queries]), module(k, cos, sin)  # q: (B, H, Q, D)
        if cache is not None:
            store, layer, update = cache
            old_k, old_v = store.read(layer)
            if old_k is not None and old_v is not None:
                k, v = torch.cat((old_k, k), dim=2), torch.cat((old_v, v), dim=2)  # (B, H, S, D)
            if update:
                store.write(layer, k, v)
        y = kernel(q, k, v, self.dropout if self.training else 0.0)  # (B, H, Q, D)
        return self.out(rearrange(y, "b h l d -> b l (h d)"))


class Block(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        hidden = int(config.mlp_ratio * config.d_model)
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = Attention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, hidden),
            nn.GELU(),
            nn.Linear(hidden, config.d_model),
            nn.Dropout(config.dropout),
        )

    def forward(self, x: Tensor, rotary, kernel: AttentionKernel, cache=None, queries: int | None = None) -> Tensor:
        """(B, L, d_model) -> (B, Q, d_model): only the first `queries` positions go on (all by default)."""
        x = x[:, :queries] + self.attn(self.norm1(x), rotary, kernel, cache, queries)
        return x + self.mlp(self.norm2(x))


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t in [0, 1] through a small MLP, added to every position."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.freqs = nn.Parameter(torch.exp(torch.linspace(0, math.log(1000.0), d_model // 2)), requires_grad=False)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(), nn.Linear(d_model, d_model))

    def forward(self, t: Tensor) -> Tensor:
        """t: (B,) -> (B, 1, d_model)."""
        angles = t.float()[:, None] * self.freqs[None, :]  # (B, d_model/2)
        return self.mlp(torch.cat((angles.sin(), angles.cos()), dim=-1))[:, None, :]


class Transformer(nn.Module):
    """DenoiserInput -> logits (B, L, vocab_size), or (N, vocab_size) at `score_at`."""

    def __init__(self, config: TransformerConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, config.d_model)
        self.time = TimeEmbedding(config.d_model) if config.time_conditioning else None
        # One extra row: the null label of classifier-free guidance (and of label dropout in training). A label is
        # added to every position, like the time: it costs nothing, keeps positions and block layouts as they are
        # (a prefix token would shift them) and lets a key-value cache hold a labelled context like any other.
        self.labels = nn.Embedding(config.num_labels + 1, config.d_model) if config.num_labels else None
        self.rotary = Rotary(config.d_model // config.n_heads, config.max_length, config.rope_base)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, vocab_size, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def time_conditioned(self) -> bool:
        return self.time is not None

    @property
    def num_labels(self) -> int:
        return self.config.num_labels

    def forward(self, inputs: DenoiserInput, cache: KVCache | None = None, update_cache: bool = True) -> Tensor:
        """With `cache`, the new positions also attend to every cached one; `update_cache` stores them too."""
        ids = inputs.ids
        length = ids.shape[1]
        positions = inputs.positions
        if cache is not None and positions is None:
            positions = cache.next_position + torch.arange(length, device=ids.device)
        last = length - 1 if positions is None else int(positions.max())
        if cache is None and last >= self.config.max_length:
            raise ValueError(f"sequence length {last + 1} exceeds the model's max_length {self.config.max_length}")
        x = self.embed(ids)  # (B, L, d_model)
        if self.time is not None:
            if inputs.t is None:
                raise ValueError("this network is time-conditioned: the DenoiserInput needs t")
            x = x + self.time(inputs.t)
        if inputs.class_labels is not None and self.labels is None:
            raise ValueError("this network was not trained with labels: class_labels must be None")
        if self.labels is not None:
            labels = inputs.class_labels
            if labels is None:  # unconditional: the null label, which label dropout trained
                labels = torch.full((ids.shape[0],), self.config.num_labels, dtype=torch.long, device=ids.device)
            x = x + self.labels(labels)[:, None, :]  # (B, 1, d_model) onto every position
        if cache is None:
            kernel = inputs.attention.kernel(length, ids.device)
        else:
            pattern_mask = inputs.attention.sdpa_mask(length, ids.device)
            kernel = DenseKernel(*self._with_cached_keys(cache, inputs, *pattern_mask))
        cos, sin = self.rotary.tables(positions, length, _compute_dtype(x))
        rotary = (self.rotary, cos, sin)
        final = len(self.blocks) - 1
        queries = _scored_prefix(inputs.score_at) if cache is None else None
        for layer, block in enumerate(self.blocks):
            # The last layer's output is read only where it is scored: positions past the last scored one (block
            # diffusion's clean half) give their keys and values but skip their attention output and MLP.
            layer_cache = None if cache is None else (cache, layer, update_cache)
            x = block(x, rotary, kernel, layer_cache, queries if layer == final else None)
        if cache is not None and update_cache:
            cache.extend_padding(inputs.attention.padding, ids.shape[0], length, ids.device)
            cache.next_position = last + 1
        if inputs.score_at is not None:
            x = x[inputs.score_at[:, : x.shape[1]]]  # (N, d_model): the head runs only where the caller scores
        return self.head(self.norm(x))

    @staticmethod
    def _with_cached_keys(
        cache: KVCache, inputs: DenoiserInput, attn_mask: Tensor | None, is_causal: bool
    ) -> tuple[Tensor | None, bool]:
        """Prepend the cached keys to the new positions' mask: every new position sees every real cached one."""
        cached = cache.size
        if cached == 0:
            return attn_mask, is_causal
        batch, length, device = inputs.ids.shape[0], inputs.ids.shape[1], inputs.ids.device
        if is_causal:
            attn_mask = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        new = torch.ones(batch, 1, length, length, dtype=torch.bool, device=device)
        if attn_mask is not None:
            new = new & attn_mask
        old = torch.ones(batch, 1, length, cached, dtype=torch.bool, device=device)
        if cache.padding is not None:
            old = old & rearrange(cache.padding, "b c -> b 1 1 c")
        return torch.cat((old, new), dim=-1), False  # (B, 1, L, C + L)


def _scored_prefix(score_at: Tensor | None) -> int | None:
    """How many leading positions hold every scored one (None: all of them are needed)."""
    if score_at is None:
        return None
    scored = score_at.any(dim=0).nonzero()  # (S, 1) positions scored in some row
    last = int(scored.max()) + 1 if scored.numel() else 1
    return None if last == score_at.shape[1] else last


def _compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype the attention projections produce: autocast's when it is on, else the activations'."""
    device_type = x.device.type
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else x.dtype


def with_time_embedding(network: Transformer) -> Transformer:
    """A copy of a time-independent `network` given a time embedding whose output layer is zero: it computes what
    `network` does, exactly, until training moves that layer (a few-step student's jumps depend on t even where
    its teacher's predictions do not)."""
    if network.time_conditioned:
        raise ValueError("the network is time-conditioned already")
    timed = Transformer(replace(network.config, time_conditioning=True), network.vocab_size)
    missing, unexpected = timed.load_state_dict(network.state_dict(), strict=False)
    if unexpected or not all(key.startswith("time.") for key in missing):
        raise ValueError(f"the copy lacks weights of the network: {unexpected or missing}")
    last = timed.time.mlp[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return timed.to(next(network.parameters()).device)
