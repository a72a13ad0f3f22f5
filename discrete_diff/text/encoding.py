r"""Fast corpus encoders that return exactly the ids of `tokenizer.encode(text, add_special_tokens=False)`.

`tokenizers` itself reaches about 5-13 MB/s on a 2-core machine (measured: `encode_batch_fast` over 1 KB pieces;
one 1 MB string at a time, 1 MB/s), most of it spent splitting and looking up the same words again and again.
Two tokenizer shapes, the ones this library builds, have an exact shortcut:

- character level (BPE with no merges, no normalizer, no pre-tokenizer): each character is its own token, or
  [UNK]; a table indexed by code point does the whole text in one numpy gather;
- byte-level BPE (the GPT-2 pre-tokenizer): text is cut into pieces before every space, tab or line end that
  follows a non-space character. That is always a boundary of the pre-tokenizer's regex (no alternative of
  `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` matches a non-space followed by
  whitespace, and the regex has no look-behind), so each piece is encoded once by tokenizers, cached, and reused.

Any other tokenizer is encoded by `encode_batch_fast` (its Rust threads) over whole texts, unchanged.
The special tokens are encoded as text (`encode_special_tokens`), so a literal "[MASK]" in a corpus stays text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from itertools import repeat

import numpy as np
from tokenizers import Tokenizer

Encoder = Callable[[list[str]], list[np.ndarray]]
"""Texts -> one int64 id array per text."""

MAX_CACHED_PIECES = 1 << 18
"""The piece cache is emptied before a text that would take it past this many pieces, so its memory stays bounded
on any corpus (about 40 MB, plus the pieces of one text)."""

UNICODE_CODE_POINTS = 0x110000
_CUT_CHARACTERS = " \t\n\r"
_CUT = re.compile(r"(?=[ \t\n\r])(?<=\S)")
"""Before an ASCII space, tab or line end that follows a non-space: whitespace for every regex engine, and `re`'s
non-space is a subset of the pre-tokenizer's (Python counts more characters as whitespace than Unicode does)."""


def corpus_encoder(backend: Tokenizer) -> Encoder:
    """The fastest exact encoder for this tokenizer; `backend.encode_special_tokens` must already be True."""
    spec = json.loads(backend.to_str())
    if _is_character_level(spec):
        return CharacterEncoder(spec)
    if _is_byte_level_bpe(spec):
        return PieceCacheEncoder(backend)
    return partial(_encode_batch, backend)


def _encode_batch(backend: Tokenizer, texts: list[str]) -> list[np.ndarray]:
    return [np.asarray(e.ids, dtype=np.int64) for e in backend.encode_batch_fast(texts, add_special_tokens=False)]


def encoder_name(backend: Tokenizer) -> str:
    """Which encoder `corpus_encoder` picks for this tokenizer (kept in the cache's meta.json)."""
    spec = json.loads(backend.to_str())
    return (
        "character table" if _is_character_level(spec) else "piece cache" if _is_byte_level_bpe(spec) else "tokenizers"
    )


def _added_tokens_all_special(spec: dict) -> bool:
    # Non-special added tokens are matched in the text before any splitting, across any boundary of ours.
    return all(token["special"] for token in spec.get("added_tokens", []))


def _is_character_level(spec: dict) -> bool:
    model = spec["model"]
    return (
        model["type"] == "BPE"
        and not model["merges"]
        and model.get("unk_token") in model["vocab"]
        and not model.get("byte_fallback")
        and not model.get("ignore_merges")
        and not model.get("continuing_subword_prefix")
        and not model.get("end_of_word_suffix")
        and model.get("dropout") is None
        and spec["normalizer"] is None
        and spec["pre_tokenizer"] is None
        and _added_tokens_all_special(spec)
    )


def _is_byte_level_bpe(spec: dict) -> bool:
    model, pre = spec["model"], spec["pre_tokenizer"] or {}
    return (
        model["type"] == "BPE"
        and model.get("dropout") is None
        and spec["normalizer"] is None
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True)
        and not pre.get("add_prefix_space")
        and _added_tokens_all_special(spec)
    )


class CharacterEncoder:
    """One id per code point from a table over all of Unicode (4.4 MB); characters not in the vocabulary are [UNK]."""

    def __init__(self, spec: dict) -> None:
        vocab = spec["model"]["vocab"]
        self.table = np.full(UNICODE_CODE_POINTS, vocab[spec["model"]["unk_token"]], dtype=np.int64)
        for token, index in vocab.items():
            if len(token) == 1:
                self.table[ord(token)] = index

    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        if not texts:
            return []
        joined = "".join(texts)
        # UTF-32 is one uint32 per code point; a lone surrogate cannot be encoded, and tokenizers refuses it too.
        points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)  # (characters,)
        ids = self.table[points]
        return np.split(ids, np.cumsum([len(t) for t in texts[:-1]]))


class PieceCacheEncoder:
    """Byte-level BPE through a cache of pieces (a word with the whitespace before it), each encoded once."""

    def __init__(self, backend: Tokenizer, max_pieces: int = MAX_CACHED_PIECES) -> None:
        self.backend = backend
        self.max_pieces = max_pieces
        self._reset()

    def _reset(self) -> None:
        self.slot_of: dict[str, int] = {}
        self.starts = np.zeros(1024, dtype=np.int64)  # slot -> where its ids begin in `flat`
        self.lengths = np.zeros(1024, dtype=np.int64)  # slot -> how many ids
        self.flat = np.zeros(1 << 16, dtype=np.int64)
        self.used = 0  # ids stored in `flat`

    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        return [self._encode(text) for text in texts]

    def _encode(self, text: str) -> np.ndarray:
        pieces = _CUT.split(text)
        if len(self.slot_of) + len(pieces) > self.max_pieces:
            self._reset()
        slots = np.fromiter(map(self.slot_of.get, pieces, repeat(-1)), dtype=np.int64, count=len(pieces))
        missing = np.flatnonzero(slots < 0)
        if missing.size:
            new = [pieces[i] for i in missing.tolist()]
            self._add(new)
            slots[missing] = [self.slot_of[p] for p in new]
        lengths = self.lengths[slots]  # (pieces,)
        ends = np.cumsum(lengths)
        # Output position k reads flat[start of its piece's ids + (k - where that piece begins in the output)].
        gather = np.repeat(self.starts[slots] - (ends - lengths), lengths) + np.arange(ends[-1] if ends.size else 0)
        return self.flat[gather]

    def _add(self, pieces: list[str]) -> None:
        joinable: list[str] = []
        alone: list[str] = []
        for piece in dict.fromkeys(pieces):
            # Begins with the whitespace of a cut and ends on a non-space: a cut on both sides of it in any join.
            joins = piece[:1] != "" and piece[0] in _CUT_CHARACTERS and not piece[-1].isspace()
            (joinable if joins else alone).append(piece)
        encodings = self.backend.encode_batch_fast(alone, add_special_tokens=False)
        alone_ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        joined_ids, joined_lengths = self._encode_joined(joinable)
        lengths = np.concatenate([np.array([len(i) for i in alone_ids], dtype=np.int64), joined_lengths])
        first_slot, total, count = len(self.slot_of), int(lengths.sum()), len(alone) + len(joinable)
        self.starts = _grown(self.starts, first_slot + count)
        self.lengths = _grown(self.lengths, first_slot + count)
        self.flat = _grown(self.flat, self.used + total)
        self.starts[first_slot : first_slot + count] = self.used + np.cumsum(lengths) - lengths
        self.lengths[first_slot : first_slot + count] = lengths
        self.flat[self.used : self.used + total] = np.concatenate([*alone_ids, joined_ids])
        self.used += total
        self.slot_of.update(zip(alone + joinable, range(first_slot, first_slot + count), strict=True))

    def _encode_joined(self, pieces: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, ids per piece) of pieces that begin at a cut and end on a non-space, encoded as one text.

        Every junction of such pieces is again a cut, so no token straddles one; one call costs about a fifth of
        encoding the pieces one by one, and the tokens' character offsets say which piece each belongs to.
        """
        if not pieces:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        encoding = self.backend.encode("".join(pieces), add_special_tokens=False)
        piece_starts = np.cumsum([0] + [len(p) for p in pieces[:-1]])  # (pieces,) character where each begins
        token_starts = np.array([start for start, _ in encoding.offsets], dtype=np.int64)  # (tokens,)
        owner = np.searchsorted(piece_starts, token_starts, side="right") - 1  # (tokens,) piece of each token
        return np.asarray(encoding.ids, dtype=np.int64), np.bincount(owner, minlength=len(pieces))


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """`array` with room for `size` entries (doubling), so appends cost amortised constant time."""
    if size <= array.size:
        return array
    bigger = np.zeros(max(size, 2 * array.size), dtype=array.dtype)
    bigger[: array.size] = array
    return bigger
