"""Encoding batches of texts in forked worker processes, results in input order, a bounded number in flight.

The fast encoders (`encoding.py`) spend most of their time in Python (splitting text, looking up pieces), which
one process cannot spread over cores; forked workers can. Forking is what PyTorch's DataLoader workers do too:
the workers only run numpy and a tokenizer of their own, rebuilt from its JSON. A corpus of one batch never
starts them.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from typing import TypeVar

import numpy as np
from tokenizers import Tokenizer

from .encoding import Encoder, corpus_encoder

Key = TypeVar("Key")
MAX_WORKERS = 8
IN_FLIGHT_PER_WORKER = 2

_worker: tuple[Encoder, np.dtype] | None = None


def default_workers() -> int:
    """The CPUs this process may run on (at most MAX_WORKERS); 0 where fork is unavailable or one CPU is all."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cpus < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return min(cpus, MAX_WORKERS)


def encode_batches(
    batches: Iterable[tuple[Key, list[str]]], backend: Tokenizer, dtype: np.dtype, workers: int
) -> Iterator[tuple[Key, list[np.ndarray]]]:
    """Each (key, texts) with its texts' ids as arrays of `dtype`, in order; `backend.encode_special_tokens` set."""
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    batches = chain([first] if second is None else [first, second], batches)
    if workers < 2 or second is None:
        encoder = corpus_encoder(backend)
        for key, texts in batches:
            yield key, [ids.astype(dtype) for ids in encoder(texts)]
        return
    with _fork_pool(backend.to_str(), dtype, workers) as pool:
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
def _fork_pool(tokenizer_json: str, dtype: np.dtype, workers: int) -> Iterator[multiprocessing.pool.Pool]:
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    # Set, tokenizers does not warn in each child that it forked after using its threads (the children use none).
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*use of fork\\(\\) may lead to deadlocks", category=DeprecationWarning
            )
            pool = multiprocessing.get_context("fork").Pool(workers, _start_worker, (tokenizer_json, dtype))
    finally:
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM")
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved
    with pool:  # leaving it terminates the workers, also when the consumer stops early
        yield pool


def _start_worker(tokenizer_json: str, dtype: np.dtype) -> None:
    global _worker
    backend = Tokenizer.from_str(tokenizer_json)
    backend.encode_special_tokens = True
    _worker = (corpus_encoder(backend), dtype)


def _encode(texts: list[str]) -> list[np.ndarray]:
    encoder, dtype = _worker
    return [ids.astype(dtype) for ids in encoder(texts)]
