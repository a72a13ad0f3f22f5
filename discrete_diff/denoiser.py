"""The one way a denoiser is called: `network(DenoiserInput(...))` -> logits.

Every caller (objectives, the sampling loop, infill length scoring, key-value-cached decoding, the transformers
model, the masked-LM adapter) builds one `DenoiserInput`; the network turns its attention pattern into the SDPA
mask once per forward pass. New conditioning signals are new fields here, not new positional arguments.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import torch
from einops import rearrange
from torch import Tensor

from .attention_kernels import AttentionKernel, DenseKernel, block_kernel


class AttentionPattern(ABC):
    """Which keys each query may attend to. `padding` (B, L) bool is True at real tokens (False keys are ignored)."""

    padding: Tensor | None

    @abstractmethod
    def structure(self, length: int, device: torch.device) -> Tensor | None:
        """(L, L) bool, True where query i may attend to key j; None when every pair may."""

    def sdpa_mask(self, length: int, device: torch.device) -> tuple[Tensor | None, bool]:
        """(attn_mask for SDPA broadcastable to (B, H, L, L), or None; is_causal)."""
        padding = None if self.padding is None or bool(self.padding.all()) else self.padding
        structure = self.structure(length, device)
        if padding is None:
            return (None, False) if structure is None else (structure, False)
        keys = rearrange(padding.bool(), "b l -> b 1 1 l")  # (B, 1, 1, L)
        return (keys if structure is None else keys & structure), False

    def kernel(self, length: int, device: torch.device) -> AttentionKernel:
        """How to compute attention under this pattern, built once per forward pass; one SDPA call by default."""
        return DenseKernel(*self.sdpa_mask(length, device))


@dataclass(frozen=True)
class Bidirectional(AttentionPattern):
    """Every position sees every real position: the masked-diffusion denoiser."""

    padding: Tensor | None = None

    def structure(self, length: int, device: torch.device) -> Tensor | None:
        return None


@dataclass(frozen=True)
class Causal(AttentionPattern):
    """Position i sees positions <= i: the autoregressive baseline."""

    padding: Tensor | None = None

    def structure(self, length: int, device: torch.device) -> Tensor | None:
        return torch.ones(length, length, dtype=torch.bool, device=device).tril()  # (L, L)

    def sdpa_mask(self, length: int, device: torch.device) -> tuple[Tensor | None, bool]:
        if self.padding is None or bool(self.padding.all()):
            return None, True  # SDPA's own causal kernel, no mask tensor
        return super().sdpa_mask(length, device)


@dataclass(frozen=True)
class BlockCausal(AttentionPattern):
    """Block diffusion's training pattern over the concatenation [x_t ; x_0] (length 2N, blocks of `block_size`).

    A noisy token of block b sees the noisy tokens of block b and the clean tokens of blocks < b; a clean token of
    block b sees the clean tokens of blocks <= b. `padding` covers all 2N positions. With `copies` = k > 1 the
    input is [x_t^1 ; ... ; x_t^k ; x_0] ((k + 1) N positions): each noisy copy sees its own block and the clean
    blocks before it, never another copy, so one pass scores k maskings of a sequence over one clean stream.
    `flex` computes it with compiled FlexAttention where that compiles (else the query chunks).
    """

    block_size: int
    padding: Tensor | None = None
    copies: int = 1
    flex: bool = False

    def __post_init__(self) -> None:
        if self.block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {self.block_size}")
        if self.copies < 1:
            raise ValueError(f"copies must be at least 1, got {self.copies}")

    def structure(self, length: int, device: torch.device) -> Tensor | None:
        if length % (self.copies + 1):
            raise ValueError(f"the input of {self.copies} noisy copies and the clean stream has length {length}")
        stream = length // (self.copies + 1)
        block = torch.arange(stream, device=device) // self.block_size  # (N,)
        same = block[:, None] == block[None, :]  # (N, N)
        earlier = block[:, None] > block[None, :]  # (N, N) key block strictly before the query's
        upto = block[:, None] >= block[None, :]  # (N, N)
        none = torch.zeros(stream, stream, dtype=torch.bool, device=device)
        noisy_rows = [  # copy i: (N, (k + 1) N)
            torch.cat((*(same if j == i else none for j in range(self.copies)), earlier), dim=1)
            for i in range(self.copies)
        ]
        clean_rows = torch.cat((*(none for _ in range(self.copies)), upto), dim=1)  # (N, (k + 1) N)
        return torch.cat((*noisy_rows, clean_rows), dim=0)  # ((k + 1) N, (k + 1) N)

    def kernel(self, length: int, device: torch.device) -> AttentionKernel:
        """A kernel that computes only the scores the pattern allows (about a quarter of the dense ones)."""
        return block_kernel(self.block_size, length, self.padding, device, self.copies, self.flex)


@dataclass(frozen=True)
class Explicit(AttentionPattern):
    """A boolean mask given in full: (L, L) or (B, L, L), True = may attend."""

    allowed: Tensor
    padding: Tensor | None = None

    def structure(self, length: int, device: torch.device) -> Tensor | None:
        allowed = self.allowed.to(device=device, dtype=torch.bool)
        return allowed if allowed.dim() == 2 else rearrange(allowed, "b q k -> b 1 q k")


@dataclass(frozen=True)
class DenoiserInput:
    """What a denoiser is called with."""

    ids: Tensor
    """(B, L) token ids, [MASK] at noised positions."""
    attention: AttentionPattern
    """Who attends to whom, padding included."""
    t: Tensor | None = None
    """(B,) diffusion time; read only by time-conditioned networks (samplers and objectives always pass it)."""
    class_labels: Tensor | None = None
    """(B,) long label ids for label-conditioned networks; None = unconditional."""
    positions: Tensor | None = None
    """(L,) long rotary positions; default 0..L-1 (after whatever a key-value cache already holds)."""
    score_at: Tensor | None = None
    """(B, L) bool: return logits only at these positions, as (N, V) in row-major order. Training asks for the
    masked positions only, so the output head and softmax skip the rest."""

    @property
    def batch_size(self) -> int:
        return self.ids.shape[0]


class Denoiser(Protocol):
    """Anything that maps a DenoiserInput to logits (B, L, V), or (N, V) when `score_at` is set."""

    time_conditioned: bool

    def __call__(self, inputs: DenoiserInput) -> Tensor: ...


def select_scored(logits: Tensor, inputs: DenoiserInput) -> Tensor:
    """For networks that compute every position: (B, L, V) -> (N, V) at `inputs.score_at`, else unchanged."""
    return logits if inputs.score_at is None else logits[inputs.score_at]
