"""Approximate key-value caches for a bidirectional denoiser: each call runs only some positions through the network.

A masked-diffusion denoiser attends both ways, so a position's keys and values at every layer but the first depend
on the whole sequence: when any token changes, all of them change, and no cache is exact. These caches reuse them
anyway, for the positions whose keys change least, and recompute everything now and then (a refresh):

- `prefix` (Fast-dLLM's prefix cache): with semi-autoregressive decoding (the `spans` strategy), the finished
  blocks before the current one keep the keys and values computed when the block began; each call runs the current
  block and every position after it. Approximates: the finished blocks no longer see the current block being filled
  in (they see it as it was, all [MASK]).
- `dual` (Fast-dLLM's dual cache): as `prefix`, and the still-masked positions after the block are cached too; each
  call runs the current block alone. Approximates as `prefix`, and the masked suffix no longer sees the block fill.
- `dkv` (dKV-Cache-Decode): a position whose token has not changed since its keys and values were last computed
  reuses them; masked positions and just-revealed ones (their keys were a [MASK]'s: caching waits one call, the
  "delay") are run. With `spans`, and without.

Every cache is refreshed (one call over all positions, whose outputs are the uncached network's, to the bit) at the
first call, when a block completes (`spans`: the earliest block holding a [MASK] changes) and, with
`refresh_every = n`, every n calls. `refresh_every = 1` is therefore the uncached sampler exactly. With a one-layer
network every cache is exact: first-layer keys and values depend only on the token and its position (and t).
The positions run in a call are the same for every row of the batch (the union of what each row needs): the saving
of `dkv` shrinks when rows differ in where their blanks are.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..denoiser import Bidirectional, DenoiserInput
from ..errors import InvalidArgument
from ..models.kv_cache import KVCache
from .spans import Spans
from .strategies import Strategy

CACHE_KINDS = ("prefix", "dual", "dkv")
"""Names users type (`--cache`)."""


def check_cache(kind: str | None, refresh_every: int | None, strategy: Strategy) -> None:
    """Fail with the setting's name if the cache cannot serve this strategy."""
    if kind is None:
        if refresh_every is not None:
            raise InvalidArgument("cache_refresh", "applies only with a cache")
        return
    if kind not in CACHE_KINDS:
        raise InvalidArgument("cache", f"{kind!r} is unknown; choose from {', '.join(CACHE_KINDS)}")
    if refresh_every is not None and refresh_every < 1:
        raise InvalidArgument("cache_refresh", f"must be at least 1, got {refresh_every}")
    if kind in ("prefix", "dual") and not isinstance(strategy, Spans):
        raise InvalidArgument("cache", f"{kind} decodes block by block: it needs the spans strategy")
    if strategy.remasks:
        raise InvalidArgument("cache", "assumes revealed tokens stay; a remasking strategy changes them")


class CachedDenoiser:
    """A denoiser (DenoiserInput -> logits (B, L, V)) over this package's transformer that runs only the positions
    its cache kind says, the others attending from stored keys and values. One per sampling run: it keeps state."""

    def __init__(self, network: torch.nn.Module, kind: str, mask_id: int, *, span_length: int | None = None,
                 refresh_every: int | None = None) -> None:  # fmt: skip
        if not hasattr(network, "blocks"):
            raise InvalidArgument("cache", "needs this package's transformer (a pretrained adapter has no cache)")
        if kind in ("prefix", "dual") and span_length is None:
            raise InvalidArgument("cache", f"{kind} decodes block by block: it needs a span length")
        self.network, self.kind, self.mask_id = network, kind, mask_id
        self.span_length, self.refresh_every = span_length, refresh_every
        self.time_conditioned = bool(getattr(network, "time_conditioned", False))
        self.keys: list[Tensor] = []  # per layer (B, H, L, D), rotated, as last computed
        self.values: list[Tensor] = []
        self.computed_from: Tensor | None = None  # (B, L) the ids each position's keys were computed from
        self.logits: Tensor | None = None  # (B, L, V) the latest logits at every position
        self.block: int | None = None
        self.calls_since_refresh = 0
        self.calls = 0
        self.last_run: Tensor | None = None
        """(N,) the columns the last call ran; the logits elsewhere are older (revealed or outside the block)."""
        self.positions_run = 0
        """Positions run through the network, summed over calls: / (calls * L) is the share of the work done."""

    def __call__(self, inputs: DenoiserInput) -> Tensor:
        if inputs.score_at is not None or inputs.positions is not None:
            raise ValueError("a cached denoiser is called with whole sequences (no score_at, no positions)")
        ids = inputs.ids  # (B, L)
        limit = self.network.config.max_length
        if ids.shape[1] > limit:
            raise ValueError(f"sequence length {ids.shape[1]} exceeds the model's max_length {limit}")
        masked = ids == self.mask_id  # (B, L)
        block = self._block(masked)
        if self._refresh_due(ids, block):
            logits = self._run_all(inputs)
        else:
            logits = self._run_some(inputs, self._positions_to_run(ids, masked, block))
        self.block = block
        self.calls += 1
        return logits

    def _block(self, masked: Tensor) -> int | None:
        """The earliest span holding a [MASK] in any row (None without spans)."""
        if self.span_length is None:
            return None
        columns = masked.any(0).nonzero()  # (M, 1)
        return int(columns.min()) // self.span_length if columns.numel() else None

    def _refresh_due(self, ids: Tensor, block: int | None) -> bool:
        if self.computed_from is None or self.computed_from.shape != ids.shape:
            return True
        if block != self.block:
            return True
        return self.refresh_every is not None and self.calls_since_refresh >= self.refresh_every

    def _positions_to_run(self, ids: Tensor, masked: Tensor, block: int | None) -> Tensor:
        """(N,) sorted column indices to run this call."""
        length = ids.shape[1]
        if self.kind == "dkv":
            stale = (ids != self.computed_from).any(0) | masked.any(0)  # (L,) revealed since, or still masked
            return stale.nonzero().flatten()
        start = (block or 0) * self.span_length
        stop = length if self.kind == "prefix" else min(start + self.span_length, length)
        return torch.arange(start, stop, device=ids.device)

    def _run_all(self, inputs: DenoiserInput) -> Tensor:
        """One call over every position, as the uncached network computes it; all keys and values stored."""
        cache = KVCache(len(self.network.blocks))
        logits = self.network(inputs, cache=cache, update_cache=True)  # (B, L, V)
        self.keys = [k for k in cache.keys if k is not None]
        self.values = [v for v in cache.values if v is not None]
        self.computed_from, self.logits = inputs.ids.clone(), logits
        self.calls_since_refresh = 1
        self.last_run = torch.arange(inputs.ids.shape[1], device=inputs.ids.device)
        self.positions_run += inputs.ids.shape[1]
        return logits

    def _run_some(self, inputs: DenoiserInput, run: Tensor) -> Tensor:
        """Run the `run` (N,) columns; every other real position attends from its stored keys and values."""
        ids, padding = inputs.ids, inputs.attention.padding  # (B, L), (B, L) or None
        self.calls_since_refresh += 1
        self.last_run = run
        if run.numel() == 0:
            return self.logits  # nothing changed and nothing is masked
        keep = torch.ones(ids.shape[1], dtype=torch.bool, device=ids.device)
        keep[run] = False
        kept = keep.nonzero().flatten()  # (C,)
        cache = KVCache(len(self.network.blocks))
        cache.keys = [k[:, :, kept] for k in self.keys]  # (B, H, C, D) each
        cache.values = [v[:, :, kept] for v in self.values]
        cache.padding = None if padding is None else padding[:, kept].bool()  # (B, C)
        part = DenoiserInput(
            ids[:, run],
            Bidirectional(None if padding is None else padding[:, run]),
            t=inputs.t,
            class_labels=inputs.class_labels,
            positions=run,
        )
        logits = self.network(part, cache=cache, update_cache=True)  # (B, N, V)
        for layer, (k, v) in enumerate(zip(cache.keys, cache.values, strict=True)):
            self.keys[layer][:, :, run] = k[:, :, kept.numel() :]  # the run positions' new keys (B, H, N, D)
            self.values[layer][:, :, run] = v[:, :, kept.numel() :]
        self.computed_from[:, run] = ids[:, run]
        self.logits[:, run] = logits  # the loop takes log-probabilities of what it is given: a new tensor
        self.positions_run += run.numel()
        return self.logits

    @property
    def share_run(self) -> float:
        """Positions run over positions an uncached sampler would have run (1.0: no saving)."""
        length = 0 if self.computed_from is None else self.computed_from.shape[1]
        return self.positions_run / max(self.calls * length, 1)


def cached_denoiser(
    network: torch.nn.Module, kind: str, mask_id: int, strategy: Strategy, refresh_every: int | None = None
) -> CachedDenoiser:
    """The denoiser `run_sampler` calls for `network` with cache `kind` under `strategy` (spans set the blocks)."""
    check_cache(kind, refresh_every, strategy)
    span_length = strategy.span_length if isinstance(strategy, Spans) else None
    return CachedDenoiser(network, kind, mask_id, span_length=span_length, refresh_every=refresh_every)
