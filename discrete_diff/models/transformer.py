"""A pre-norm transformer over token ids with rotary positions; bidirectional (denoiser) or causal (AR baseline)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


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
    """Longest sequence the rotary tables are built for."""
    dropout: float = 0.0
    """Dropout on attention and MLP outputs; 0 for the short CPU runs this library is tuned for."""
    causal: bool = False
    """True gives an autoregressive model (the baseline); False the bidirectional denoiser."""
    time_conditioning: bool = False
    """Feed t to the network. Off by default: with SUBS the optimal denoiser ignores t, and a
    time-independent network is what lets samplers reuse a forward pass when no token changed."""
    rope_base: float = 10000.0
    """Base of the rotary frequencies."""

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("the head width d_model / n_heads must be even for rotary embeddings")
        if min(self.d_model, self.n_layers, self.n_heads, self.max_length) <= 0:
            raise ValueError("d_model, n_layers, n_heads and max_length must be positive")


class Rotary(nn.Module):
    """Rotary position embedding: rotates pairs of query/key channels by position-dependent angles."""

    def __init__(self, head_dim: int, max_length: int, base: float) -> None:
        super().__init__()
        inv_freq = base ** (-torch.arange(0, head_dim, 2).float() / head_dim)  # (D/2,)
        angles = torch.outer(torch.arange(max_length).float(), inv_freq)  # (L, D/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x: (B, H, L, D) at positions offset .. offset + L - 1 (a key-value cache decodes at offset > 0)."""
        length = x.shape[-2]
        cos = self.cos[offset : offset + length].to(x.dtype)  # (L, D/2)
        sin = self.sin[offset : offset + length].to(x.dtype)  # (L, D/2)
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, H, L, D/2) each
        rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, H, L, D/2, 2)
        return rearrange(rotated, "b h l d two -> b h l (d two)")


class Attention(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.out = nn.Linear(config.d_model, config.d_model, bias=False)
        self.rotary = Rotary(config.d_model // config.n_heads, config.max_length, config.rope_base)
        self.dropout = config.dropout

    def forward(self, x: Tensor, attn_mask: Tensor | None, is_causal: bool) -> Tensor:
        """x: (B, L, d_model); attn_mask: (B, 1, L, L) or (B, 1, 1, L) bool, True = may attend."""
        q, k, v = rearrange(self.qkv(x), "b l (three h d) -> three b h l d", three=3, h=self.n_heads)
        q, k = self.rotary(q), self.rotary(k)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, H, L, D)
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

    def forward(self, x: Tensor, attn_mask: Tensor | None, is_causal: bool) -> Tensor:
        x = x + self.attn(self.norm1(x), attn_mask, is_causal)
        return x + self.mlp(self.norm2(x))


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t in [0, 1] through a small MLP, added to every position."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.freqs = nn.Parameter(torch.exp(torch.linspace(0, math.log(1000.0), d_model // 2)), requires_grad=False)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(), nn.Linear(d_model, d_model))

    def forward(self, t: Tensor) -> Tensor:
        """t: (B,) -> (B, 1, d_model)."""
        angles = t[:, None] * self.freqs[None, :]  # (B, d_model/2)
        return self.mlp(torch.cat((angles.sin(), angles.cos()), dim=-1))[:, None, :]


class Transformer(nn.Module):
    """Token ids (B, L) -> logits (B, L, vocab_size)."""

    def __init__(self, config: TransformerConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, config.d_model)
        self.time = TimeEmbedding(config.d_model) if config.time_conditioning else None
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

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, t: Tensor | None = None) -> Tensor:
        """input_ids: (B, L); attention_mask: (B, L) bool, True at real tokens; t: (B,) if time-conditioned."""
        length = input_ids.shape[1]
        if length > self.config.max_length:
            raise ValueError(f"sequence length {length} exceeds the model's max_length {self.config.max_length}")
        x = self.embed(input_ids)  # (B, L, d_model)
        if self.time is not None:
            if t is None:
                raise ValueError("this network is time-conditioned: pass t")
            x = x + self.time(t)
        attn_mask, is_causal = self._attention_mask(attention_mask, length)
        for block in self.blocks:
            x = block(x, attn_mask, is_causal)
        return self.head(self.norm(x))

    def _attention_mask(self, attention_mask: Tensor | None, length: int) -> tuple[Tensor | None, bool]:
        """SDPA takes either is_causal or an explicit mask; padding forces the explicit form."""
        if attention_mask is None or bool(attention_mask.all()):
            return None, self.config.causal
        keys = rearrange(attention_mask.bool(), "b l -> b 1 1 l")  # (B, 1, 1, L)
        if self.config.causal:
            causal = torch.ones(length, length, dtype=torch.bool, device=keys.device).tril()  # (L, L)
            keys = keys & causal
        return keys, False
