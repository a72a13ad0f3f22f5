"""Protein generation: [<cls>, <mask> * L, <eos>] rows through the one sampling loop, lengths chosen per sample."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..checkpoint import TrainedModel
from ..errors import UserInputError
from ..generation import denoise
from ..sampling.options import SamplingSettings
from .fasta import ProteinRecord
from .tokenizer import AMBIGUOUS, CANONICAL_AMINO_ACIDS


def parse_lengths(text: str) -> list[int] | tuple[int, int]:
    """`100` (fixed), `50-150` (uniform range, inclusive) or `60,80,120` (a list, cycled over the samples)."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-"))
            if not 1 <= low <= high:
                raise ValueError
            return (low, high)
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserInputError(f"--length {text!r}: expected N, LOW-HIGH or N1,N2,... with positive lengths") from None
    if min(values) < 1:
        raise UserInputError(f"--length {text!r}: lengths must be positive")
    return values


def trained_length_limit(model: TrainedModel) -> int:
    """Most residues one sample may have: the training window (or the network's positions) less <cls>/<eos>."""
    window = model.data.get("datamodule", {}).get("init_args", {}).get("max_length")
    return min(window or model.network.config.max_length, model.network.config.max_length) - 2


def choose_lengths(
    model: TrainedModel, num: int, lengths: list[int] | tuple[int, int] | None, generator: torch.Generator
) -> list[int]:
    """Per-sample residue counts: the user's choice, or draws from the training length distribution.

    Training lengths above the model's limit are left out of the draw (not clipped, which would pile them up at
    the limit): for a set with long proteins the drawn lengths are those of its proteins that fit one window.
    """
    limit = trained_length_limit(model)
    if isinstance(lengths, tuple):
        chosen = torch.randint(lengths[0], lengths[1] + 1, (num,), generator=generator).tolist()
    elif lengths is not None:
        chosen = [lengths[i % len(lengths)] for i in range(num)]
    else:
        stored = model.data.get("lengths")
        if not stored:
            raise UserInputError("the checkpoint stores no length distribution; give the lengths with --length")
        pairs = [(n, c) for n, c in zip(stored["length"], stored["count"], strict=True) if n <= limit]
        if not pairs:
            raise UserInputError(f"no training length fits the model's limit of {limit} residues; give --length")
        counts = torch.tensor([c for _, c in pairs], dtype=torch.float64)
        picks = torch.multinomial(counts, num, replacement=True, generator=generator)
        return [pairs[i][0] for i in picks.tolist()]
    if max(chosen) > limit:
        raise UserInputError(f"--length {max(chosen)} exceeds the model's limit of {limit} residues")
    return chosen


@dataclass(frozen=True)
class GenerationSettings:
    """How proteins are drawn: the shared sampling settings plus what only protein generation needs."""

    sampling: SamplingSettings = field(default_factory=lambda: SamplingSettings(steps=100))
    seed: int = 0
    allow_noncanonical: bool = False
    batch_size: int = 50

    def header(self) -> str:
        """The settings a FASTA header carries; filters appear only when set."""
        s = self.sampling
        words = [f"steps={s.steps}", f"strategy={s.strategy}", f"temperature={s.temperature}"]
        words += [f"{name}={value}" for name, value in (("top_k", s.top_k), ("top_p", s.top_p),
                  ("repetition_penalty", s.repetition_penalty)) if value is not None]  # fmt: skip
        return " ".join([*words, f"seed={self.seed}"])


def allowed_residues(allow_noncanonical: bool) -> str:
    return CANONICAL_AMINO_ACIDS + (AMBIGUOUS if allow_noncanonical else "")


def generate_proteins(
    model: TrainedModel, lengths: list[int], settings: GenerationSettings
) -> tuple[list[ProteinRecord], int]:
    """One record per requested length (in the same order) and the number of network calls."""
    if settings.sampling.steps < 1:
        raise UserInputError(f"--steps must be at least 1, got {settings.sampling.steps}")
    tokenizer = model.tokenizer
    vocab = tokenizer.get_vocab()
    allowed = {vocab[r] for r in allowed_residues(settings.allow_noncanonical)}
    banned = sorted(set(vocab.values()) - allowed)
    generator = torch.Generator().manual_seed(settings.seed)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])  # similar lengths share a batch: less padding
    sequences: dict[int, str] = {}
    calls = 0
    for start in range(0, len(order), settings.batch_size):
        batch = order[start : start + settings.batch_size]
        width = max(lengths[i] for i in batch) + 2
        tokens = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)  # (B, L)
        for row, i in enumerate(batch):
            tokens[row, 0] = tokenizer.bos_token_id
            tokens[row, 1 : lengths[i] + 1] = model.mask_id
            tokens[row, lengths[i] + 1] = tokenizer.eos_token_id
        attention_mask = tokens != tokenizer.pad_token_id  # (B, L)
        result = denoise(
            model, tokens, settings.sampling, attention_mask=attention_mask, banned=banned, generator=generator
        )
        calls += result.network_calls
        for row, i in enumerate(batch):
            sequences[i] = tokenizer.decode(result.tokens[row, 1 : lengths[i] + 1].tolist())
    records = [
        ProteinRecord(f"sample_{i}", f"sample_{i} length={lengths[i]} {settings.header()}", sequences[i])
        for i in range(len(lengths))
    ]
    return records, calls
