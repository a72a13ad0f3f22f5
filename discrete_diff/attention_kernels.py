"""How attention is computed for a pattern: one dense SDPA call, or block diffusion's query chunks.

An attention pattern (`denoiser.py`) says who may attend to whom; a kernel here computes attention under it,
built once per forward pass and called by every layer with rotated queries, keys and values (B, H, L, D).

Block diffusion's training input [x_t ; x_0] has 2N positions, but under its pattern a query sees on average
about N/2 keys: through one dense mask SDPA computes all (2N)^2 scores and throws most away. `BlockChunks`
computes only the scores a chunk of positions can need: the queries of positions [a, b) of both halves attend
to the clean keys [0, b) and the noisy keys [a, b), with a small mask inside that window. Every score it skips
is one the dense mask sets to -inf, so the output is the dense path's (tests/test_attention_kernels.py).

The same chunks serve k noisy copies of a sequence beside one clean stream, [x_t^1 ; ... ; x_t^k ; x_0]: each copy
sees its own block and the clean blocks before it, and the clean stream, which no mask draw changes, is computed
once for all k (block diffusion's `maskings_per_sequence`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

LOG = logging.getLogger(__name__)

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
    """Positions [start, stop) of every stream and their mask (B or 1, k + 1, 1, n, stop + n): for each noisy copy
    i over [clean[:stop] ; noisy_i[start:stop]], then for the clean stream over [clean[:stop] ; (nothing)]."""

    start: int
    stop: int
    mask: Tensor


class BlockChunks:
    """Block-causal attention over [x_t^1 ; ... ; x_t^k ; x_0] (k = `copies` noisy streams and the clean one, N
    positions each, blocks of `block_size`), one SDPA call per chunk.

    In a chunk of positions [a, b) (whole blocks), a noisy query of copy i, block j sees the noisy keys of copy i,
    block j and the clean keys of blocks < j; a clean query of block j sees the clean keys of blocks <= j. Clean keys
    at or past b belong to later blocks and noisy keys outside [a, b) to other blocks, so no query of the chunk may
    see them. Each stream's queries of the chunk are one group of the call's batch, with keys [clean[:b] ; its own
    [a, b)], so no score between two copies is computed and the clean stream is computed once for k maskings of a
    sequence. `padding` (B, (k + 1) N) is True at real tokens.
    """

    def __init__(
        self, block_size: int, length: int, padding: Tensor | None, device: torch.device, copies: int = 1
    ) -> None:
        if copies < 1 or length % (copies + 1):
            raise ValueError(f"the input of {copies} noisy copies and the clean stream has length {length}")
        self.copies = copies
        self.stream = stream = length // (copies + 1)  # N
        chunk = -(-max(CHUNK_POSITIONS, block_size) // block_size) * block_size  # whole blocks
        block = torch.arange(stream, device=device) // block_size  # (N,)
        self.chunks = []
        for start in range(0, stream, chunk):
            stop = min(start + chunk, stream)
            rows, clean_keys, noisy_keys = block[start:stop, None], block[None, :stop], block[None, start:stop]
            noisy_rows = torch.cat((rows > clean_keys, rows == noisy_keys), dim=1)  # (n, stop + n)
            clean_rows = torch.cat((rows >= clean_keys, torch.zeros_like(rows == noisy_keys)), dim=1)
            mask = torch.stack((*(noisy_rows for _ in range(copies)), clean_rows))  # (k + 1, n, stop + n)
            mask = rearrange(mask, "g n s -> 1 g 1 n s")
            if padding is not None:
                clean = padding[:, copies * stream : copies * stream + stop]  # (B, stop)
                own = [padding[:, g * stream + start : g * stream + stop] for g in range(copies + 1)]
                keys = torch.stack([torch.cat((clean, o), dim=1) for o in own], dim=1).bool()  # (B, k + 1, stop + n)
                mask = mask & rearrange(keys, "b g s -> b g 1 1 s")  # (B, k + 1, 1, n, stop + n)
            self.chunks.append(Chunk(start, stop, mask))

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
        """q (B, H, Q, D) for the first Q positions, k and v (B, H, (c + 1) N, D) -> (B, H, Q, D), c = `copies`.

        Q = (c + 1) N, or Q <= c N: the noisy queries alone (the last layer, whose clean outputs nobody reads); a
        Q short of either runs with zero queries up to it, cut after."""
        stream, copies, queries = self.stream, self.copies, q.shape[2]
        target = (copies + 1) * stream if queries > copies * stream else copies * stream
        if queries < target:
            pad = q.new_zeros(*q.shape[:2], target - queries, q.shape[3])
            return self(torch.cat((q, pad), dim=2), k, v, dropout_p)[:, :, :queries]
        groups = copies + 1 if queries > copies * stream else copies  # the clean stream's queries too, or not
        clean_start = copies * stream
        outputs: list[list[Tensor]] = [[] for _ in range(groups)]  # per stream, the clean one last
        for chunk in self.chunks:
            a, stop = chunk.start, chunk.stop
            starts = [g * stream + a for g in range(groups)]  # each stream's [a, stop)
            rows = torch.stack([q[:, :, s : s + stop - a] for s in starts], dim=1)  # (B, G, H, n, D)
            keys = torch.stack(
                [
                    torch.cat((k[:, :, clean_start : clean_start + stop], k[:, :, s : s + stop - a]), dim=2)
                    for s in starts
                ],
                dim=1,
            )
            values = torch.stack(
                [
                    torch.cat((v[:, :, clean_start : clean_start + stop], v[:, :, s : s + stop - a]), dim=2)
                    for s in starts
                ],
                dim=1,
            )  # (B, G, H, stop + n, D)
            mask = chunk.mask[:, :groups].expand(q.shape[0], -1, -1, -1, -1)  # (B, G, 1, n, stop + n)
            out = F.scaled_dot_product_attention(
                rows.flatten(0, 1),
                keys.flatten(0, 1),
                values.flatten(0, 1),
                attn_mask=mask.flatten(0, 1),
                dropout_p=dropout_p,
            ).unflatten(0, (q.shape[0], groups))  # (B, G, H, n, D)
            for g in range(groups):
                outputs[g].append(out[:, g])
        return torch.cat([piece for stream_outputs in outputs for piece in stream_outputs], dim=2)  # (B, H, Q, D)


class FlexBlock:
    """The same block-causal pattern as `BlockChunks` through torch's FlexAttention: a block mask (which tiles of
    queries x keys hold any allowed score, and which are partly masked) built from the pattern's rule, and one
    compiled attention call that skips the empty tiles. Exact against the dense mask (tests); on CPU the compiled
    kernel needs a C++ compiler and has no backward pass (torch 2.13), so build it with `block_kernel`, which falls
    back to `BlockChunks`."""

    def __init__(
        self, block_size: int, length: int, padding: Tensor | None, device: torch.device, copies: int = 1
    ) -> None:
        if length % (copies + 1):
            raise ValueError(f"the input of {copies} noisy copies and the clean stream has length {length}")
        stream = length // (copies + 1)  # N
        real = None if padding is None else padding.bool()

        def allowed(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
            query_stream, key_stream = q // stream, kv // stream  # copies = the clean stream
            query_block, key_block = (q % stream) // block_size, (kv % stream) // block_size
            clean_query, clean_key = query_stream == copies, key_stream == copies
            clean_rows = clean_query & clean_key & (query_block >= key_block)
            earlier_clean = clean_key & (query_block > key_block)
            own_block = (key_stream == query_stream) & (query_block == key_block)
            rule = clean_rows | (~clean_query & (earlier_clean | own_block))
            return rule if real is None else rule & real[b, kv]

        batch = None if real is None else real.shape[0]
        self.length, self.rule = length, allowed
        self.mask: BlockMask = create_block_mask(allowed, batch, None, length, length, device=device)

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
        """q (B, H, Q, D) for the first Q positions, k and v (B, H, L, D) -> (B, H, Q, D)."""
        if dropout_p:
            raise ValueError("FlexAttention has no attention dropout: train block diffusion with dropout 0")
        queries = q.shape[2]
        if queries < self.length:  # the last layer's noisy queries alone: zero queries after, cut after
            q = torch.cat((q, q.new_zeros(*q.shape[:2], self.length - queries, q.shape[3])), dim=2)
        return compiled_flex_attention()(q, k, v, block_mask=self.mask)[:, :, :queries]


@cache
def compiled_flex_attention():
    """FlexAttention compiled once per process (uncompiled it computes every score)."""
    return torch.compile(flex_attention, dynamic=False)


@cache
def flex_compiles(device_type: str, backward: bool) -> bool:
    """Whether compiled FlexAttention runs here, and its backward pass if asked (on CPU inductor needs a C++
    compiler, and torch has no CPU backward for it); says why once if not."""
    try:
        kernel = FlexBlock(2, 2 * 128, None, torch.device(device_type))
        q = torch.zeros(1, 1, 2 * 128, 16, device=device_type, requires_grad=backward)
        out = kernel(q, q, q)
        if backward:
            out.sum().backward()
    except Exception as error:  # inductor raises many types (missing compiler, unsupported device): all fall back
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        what = "with its backward pass " if backward else ""
        LOG.warning("FlexAttention does not run %shere (%s): block diffusion uses the query-chunk kernel", what, first)
        return False
    return True


def block_kernel(
    block_size: int, length: int, padding: Tensor | None, device: torch.device, copies: int = 1, flex: bool = False
) -> BlockChunks | FlexBlock:
    """Block diffusion's kernel: query chunks, or FlexAttention when asked for and it runs here (with its backward
    pass when gradients are on: on CPU torch has none, so training falls back while evaluation may use it)."""
    if flex and flex_compiles(device.type, torch.is_grad_enabled()):
        return FlexBlock(block_size, length, padding, device, copies)
    return BlockChunks(block_size, length, padding, device, copies)


AttentionKernel = DenseKernel | BlockChunks | FlexBlock
"""(q, k, v, dropout_p) -> attention output; what `AttentionPattern.kernel` returns."""
