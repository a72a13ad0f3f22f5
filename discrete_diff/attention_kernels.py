"""How attention is computed for a pattern: one dense SDPA call, or block diffusion's query chunks.

An attention pattern (`denoiser.py`) says who may attend to whom; a kernel here computes attention under it,
built once per forward pass and called by every layer with rotated queries, keys and values (B, H, L, D).

Block diffusion's training input [x_t ; x_0] has 2N positions, but under its pattern a query sees on average
about N/2 keys: through one dense mask SDPA computes all (2N)^2 scores and throws most away. `BlockChunks`
computes only the scores a chunk of positions can need: the queries of positions [a, b) of both halves attend
to the clean keys [0, b) and the noisy keys [a, b), with a small mask inside that window. Every score it skips
is one the dense mask sets to -inf, so the output is the dense path's (tests/test_attention_kernels.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

CHUNK_POSITIONS = 64
"""Positions per chunk (rounded up to whole blocks): the fastest of 32, 64, 128 for training steps on CPU at
length 256 (benchmarks/block_step.py); smaller chunks skip more scores but make more, smaller SDPA calls."""


@dataclass(frozen=True)
class DenseKernel:
    """One SDPA call: `mask` broadcastable to (B, H, L, S) with True = may attend, or None; `is_causal`."""

    mask: Tensor | None
    is_causal: bool = False

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
        """q (B, H, Q, D) for the first Q of the L positions, k and v (B, H, S, D) -> (B, H, Q, D)."""
        mask, causal = self.mask, self.is_causal
        if mask is not None and mask.shape[-2] > q.shape[2]:
            mask = mask[..., : q.shape[2], :]  # SDPA's causal flag already aligns a shorter query to the top
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, dropout_p=dropout_p)


@dataclass(frozen=True)
class Chunk:
    """Positions [start, stop) of both halves and their mask (B or 1, 1, 2n, stop + n) over [clean[:stop] ; noisy]."""

    start: int
    stop: int
    mask: Tensor


class BlockChunks:
    """Block-causal attention over [x_t ; x_0] (length 2N, blocks of `block_size`), one SDPA call per chunk.

    In a chunk of positions [a, b) (whole blocks), a noisy query of block j sees the noisy keys of block j and the
    clean keys of blocks < j; a clean query of block j sees the clean keys of blocks <= j. Clean keys at or past b
    belong to later blocks and noisy keys outside [a, b) to other blocks, so no query of the chunk may see them.
    `padding` (B, 2N) is True at real tokens.
    """

    def __init__(self, block_size: int, length: int, padding: Tensor | None, device: torch.device) -> None:
        if length % 2:
            raise ValueError(f"the [x_t ; x_0] input has even length, got {length}")
        self.half = half = length // 2
        chunk = -(-max(CHUNK_POSITIONS, block_size) // block_size) * block_size  # whole blocks
        block = torch.arange(half, device=device) // block_size  # (N,)
        self.chunks = []
        for start in range(0, half, chunk):
            stop = min(start + chunk, half)
            rows, clean_keys, noisy_keys = block[start:stop, None], block[None, :stop], block[None, start:stop]
            noisy_rows = torch.cat((rows > clean_keys, rows == noisy_keys), dim=1)  # (n, stop + n)
            clean_rows = torch.cat((rows >= clean_keys, torch.zeros_like(rows == noisy_keys)), dim=1)
            mask = torch.cat((noisy_rows, clean_rows))[None, None]  # (1, 1, 2n, stop + n)
            if padding is not None:
                keys = torch.cat((padding[:, half : half + stop], padding[:, start:stop]), dim=1).bool()
                mask = mask & rearrange(keys, "b s -> b 1 1 s")  # (B, 1, 2n, stop + n)
            self.chunks.append(Chunk(start, stop, mask))

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
        """q (B, H, Q, D) for the first Q positions, k and v (B, H, 2N, D) -> (B, H, Q, D).

        Q = 2N, or Q <= N: the noisy queries alone (the last layer, whose clean outputs nobody reads)."""
        half, noisy, clean = self.half, [], []
        if half < q.shape[2] < 2 * half:  # some clean queries: run all of them (zeros past Q), keep the first Q
            pad = q.new_zeros(*q.shape[:2], 2 * half - q.shape[2], q.shape[3])
            return self(torch.cat((q, pad), dim=2), k, v, dropout_p)[:, :, : q.shape[2]]
        clean_queries = q.shape[2] == 2 * half
        for chunk in self.chunks:
            a, b = chunk.start, min(chunk.stop, q.shape[2])
            if a >= b:
                break
            n = chunk.stop - a
            queries = q[:, :, a:b]  # (B, H, n, D) noisy, then the same positions' clean queries
            mask = chunk.mask[..., : b - a, :]
            if clean_queries:
                queries, mask = torch.cat((queries, q[:, :, half + a : half + b]), dim=2), chunk.mask
            keys = torch.cat((k[:, :, half : half + chunk.stop], k[:, :, a : a + n]), dim=2)  # (B, H, stop + n, D)
            values = torch.cat((v[:, :, half : half + chunk.stop], v[:, :, a : a + n]), dim=2)
            out = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask, dropout_p=dropout_p)
            noisy.append(out[:, :, : b - a])
            clean.append(out[:, :, b - a :])
        return torch.cat(noisy + (clean if clean_queries else []), dim=2)  # (B, H, Q, D)


AttentionKernel = DenseKernel | BlockChunks
"""(q, k, v, dropout_p) -> attention output; what `AttentionPattern.kernel` returns."""
