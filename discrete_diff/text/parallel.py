"""Encoding batches of texts in forked worker processes, results in input order, a bounded number in flight.

The fast encoders (`encoding.py`) spend most of their time in Python (splitting text, looking up pieces), which
one process cannot spread over cores; forked workers can. The first WARMUP_BATCHES are encoded here, so a small
corpus never starts workers, and the workers, forked after them, inherit the encoder with its warm piece cache.
Forking is what PyTorch's DataLoader workers do too; tokenizers turns its own threads off in a forked child.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain, islice
from typing import TypeVar

import numpy as np
from tokenizers import Tokenizer

from .encoding import Encoder, corpus_encoder

Key = TypeVar("Key")
MAX_WORKERS = 8
IN_FLIGHT_PER_WORKER = 2
WARMUP_BATCHES = 8

_worker: tuple[Encoder, np.dtype] | None = None
"""What a forked worker encodes with: set in the parent just before it forks."""


def default_workers() -> int:
    """The CPUs this process may run on (at most MAX_WORKERS); 0 where fork is unavailable, one CPU is all, or
    this process is itself a daemonic worker (which may not start processes)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    forkable = "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon
    if cpus < 2 or not forkable:
        return 0
    return min(cpus, MAX_WORKERS)


def encode_batches(
    batches: Iterable[tuple[Key, list[str]]],
    backend: Tokenizer,
    dtype: np.dtype,
    workers: int,
    warmup: int = WARMUP_BATCHES,
) -> Iterator[tuple[Key, list[np.ndarray]]]:
    """Each (key, texts) with its texts' ids as arrays of `dtype`, in order; `backend.encode_special_tokens` set.

    The first `warmup` batches are encoded in this process, the rest by `workers` forked processes (if >= 2).
    """
    encoder = corpus_encoder(backend)
    batches = iter(batches)
    for key, texts in islice(batches, warmup):
        yield key, _encoded(encoder, texts, dtype)
    following = next(batches, None)
    if following is None:
        return
    batches = chain([following], batches)
    if workers < 2:
        for key, texts in batches:
            yield key, _encoded(encoder, texts, dtype)
        return
    with _fork_pool(encoder, dtype, workers) as pool:
        pending: deque = deque()
        for key, texts in batches:
            pending.append((key, pool.apply_async(_encode, (texts,))))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                key, result = pending.popleft()
                yield key, result.get()
        while pending:
            key, result = pending.popleft()
            yield key, result.get()


@contextmanager
def _fork_pool(encoder: Encoder, dtype: np.dtype, workers: int) -> Iterator[multiprocessing.pool.Pool]:
    global _worker
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    # Set, tokenizers does not warn in each child that it forked after using its threads (the children use none).
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _worker = (encoder, dtype)
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking a process that runs threads; the children only run this module.
            warnings.filterwarnings("ignore", message=".*fork\\(\\) may lead to deadlocks", category=DeprecationWarning)
            pool = multiprocessing.get_context("fork").Pool(workers)
    finally:
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM")
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved
    try:
        with pool:  # leaving it terminates the workers, also when the consumer stops early
            yield pool
    finally:
        _worker = None


def _encoded(encoder: Encoder, texts: list[str], dtype: np.dtype) -> list[np.ndarray]:
    return [ids.astype(dtype) for ids in encoder(texts)]


def _encode(texts: list[str]) -> list[np.ndarray]:
    encoder, dtype = _worker
    return _encoded(encoder, texts, dtype)
