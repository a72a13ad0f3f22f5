"""Generation from a trained model, for every domain: rows of [MASK] between the domain's framing, one sampling
loop to fill them (or key-value-cached decoding for an autoregressive model), records out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .block_generation import decode_blocks
from .domain import AT_EOS, Record
from .errors import InvalidArgument, UserInputError
from .inference import TrainedModel
from .objectives import Decoding
from .sampling import SamplingResult, SamplingSettings, StepCallback, Trajectory, run_sampler
from .sampling.autoregressive import generate_autoregressive
from .sampling.bidirectional_cache import cached_denoiser
from .sampling.settings import settings_header


def denoise(
    model: TrainedModel,
    tokens: Tensor,
    settings: SamplingSettings,
    *,
    banned: Sequence[int],
    pinned: Tensor | None = None,
    attention_mask: Tensor | None = None,
    class_labels: Tensor | None = None,
    prompt: Tensor | None = None,
    generator: torch.Generator | None = None,
    record: bool = False,
    on_step: StepCallback | None = None,
) -> SamplingResult:
    """Fill the [MASK] positions of tokens (B, L) with the model; `pinned` positions (default: the rest) stay.

    `banned` ids are never drawn (see `Domain.banned_ids`). `class_labels` (B,) condition a labelled model (see
    `TrainedModel.class_labels`); a guidance scale in `settings` steers toward them and, for infilling, toward the
    `prompt` (B, L) positions, which the unconditional pass sees masked.
    """
    if model.objective.decoding is not Decoding.WINDOW:
        raise UserInputError(
            f"denoising needs a masked-diffusion model; this one was trained with {type(model.objective).__name__}"
        )
    process = model.process
    if process.revises and not settings.strategy.any_process:
        raise UserInputError(
            f"strategy {type(settings.strategy).__name__} reveals [MASK] positions; {model.objective.kind} samples "
            "with the ancestral strategy"
        )
    if process.revises and settings.cache is not None:
        raise InvalidArgument("cache", f"{settings.cache} reuses keys of decided positions; a {model.objective.kind} "
                              "model revises every position to the last step")  # fmt: skip
    guidance = model.guidance(settings, class_labels, prompt)
    if settings.cache in ("prefix", "dual") and guidance is not None and guidance.hidden is not None:
        # the unguided rows keep the prompt masked: the earliest span holding a [MASK] would never move on
        raise InvalidArgument("cache", f"{settings.cache} cannot follow the spans when guidance hides the prompt")
    network = model.network
    if settings.cache is not None:  # one cache per run: it holds this run's keys and values
        network = cached_denoiser(network, settings.cache, model.mask_id, settings.strategy, settings.cache_refresh)
    return run_sampler(
        network,
        tokens,
        mask_id=model.mask_id,
        strategy=settings.strategy,
        num_steps=settings.steps,
        schedule=model.objective.schedule,
        filters=settings.filters(banned, model.mask_id),
        pinned=pinned,
        attention_mask=attention_mask,
        class_labels=class_labels,
        guidance=guidance,
        generator=generator,
        record=record,
        on_step=on_step,
        process=process,
    )


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


def choose_lengths(
    model: TrainedModel, num: int, lengths: list[int] | tuple[int, int] | None, generator: torch.Generator
) -> list[int]:
    """Per-sample lengths (in the domain's units): the caller's choice, or draws from the training lengths.

    Training lengths above the model's limit are left out of the draw (not clipped, which would pile them up at
    the limit): for a set with long proteins the drawn lengths are those of its proteins that fit one window.
    """
    limit = model.length_limit
    if isinstance(lengths, tuple):
        chosen = torch.randint(lengths[0], lengths[1] + 1, (num,), generator=generator).tolist()
    elif lengths is not None:
        chosen = [lengths[i % len(lengths)] for i in range(num)]
    else:
        stored = model.data.get("lengths")
        if not stored:
            return [limit] * num
        pairs = [(n, c) for n, c in zip(stored["length"], stored["count"], strict=True) if n <= limit]
        if not pairs:
            raise UserInputError(f"no training length fits the model's limit of {limit}; give --length")
        counts = torch.tensor([c for _, c in pairs], dtype=torch.float64)
        picks = torch.multinomial(counts, num, replacement=True, generator=generator)
        return [pairs[i][0] for i in picks.tolist()]
    if max(chosen) > limit and not model.objective.continues_past_window:
        raise UserInputError(f"--length {max(chosen)} exceeds the model's limit of {limit} {model.domain.unit}s")
    return chosen


@dataclass(frozen=True)
class GenerationRun:
    records: list[Record]
    """One per requested length, in the requested order."""
    ids: list[list[int]]
    """The token ids of each record's sequence (framing excluded)."""
    network_calls: int
    trajectory: Trajectory | None = None
    """The first batch's sampling run, when recorded."""


def generate(
    model: TrainedModel,
    lengths: Sequence[int],
    *,
    settings: SamplingSettings | None = None,
    label: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    allow_noncanonical: bool = False,
    at_eos: str = "stop",
    record: bool = False,
    on_step: StepCallback | None = None,
) -> GenerationRun:
    """One sample per entry of `lengths` (positions between the domain's framing); `settings` default to the
    model's (`TrainedModel.default_settings`: a distilled model's step count).

    label: for a model trained with labels, the label every sample is conditioned on (None: the null label, i.e.
    unconditional); `settings.guidance_scale` steers toward it (classifier-free guidance).

    at_eos: what a text sample does with a drawn [EOS] (a document end): "stop" (its text ends there), "break" (shown
    as a line `[EOS]`) or "ban" (never drawn). `ids` always hold every drawn token.
    """
    settings = settings or model.default_settings()
    if not lengths or min(lengths) < 1:
        raise InvalidArgument("lengths", f"must be one or more positive lengths, got {list(lengths)}")
    if batch_size < 1:
        raise InvalidArgument("batch_size", f"must be at least 1, got {batch_size}")
    if at_eos not in AT_EOS:
        raise InvalidArgument("at_eos", f"must be one of {', '.join(AT_EOS)}, got {at_eos!r}")
    model.class_labels(label, 1)  # an unknown label fails before any sampling
    if settings.cache is not None and model.objective.decoding is not Decoding.WINDOW:
        raise InvalidArgument("cache", f"applies to masked-diffusion models; this one is {model.objective.kind}")
    if settings.guidance_scale and not model.objective.guidance_applies:
        raise InvalidArgument("guidance_scale", f"applies to diffusion models; this one is {model.objective.kind}")
    generator = torch.Generator().manual_seed(seed)
    breaks = at_eos != "ban"
    banned = model.domain.banned_ids(allow_noncanonical=allow_noncanonical, document_breaks=breaks)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])  # similar lengths share a batch: less padding
    bodies_ids: dict[int, list[int]] = {}
    calls, trajectory = 0, None
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        rows = [lengths[i] for i in batch]
        labels = model.class_labels(label, len(rows))  # (B,) or None
        decode = DECODERS[model.objective.decoding]
        result, bodies = decode(
            model, rows, settings, banned, generator, labels, on_step, record and trajectory is None
        )
        trajectory = trajectory or result.trajectory
        calls += result.network_calls
        for row, (index, body) in enumerate(zip(batch, bodies, strict=True)):
            bodies_ids[index] = result.tokens[row, body].tolist()
    header = " ".join([*([f"label={label}"] if label is not None else []), *settings_header(settings), f"seed={seed}"])
    ids = [bodies_ids[i] for i in range(len(lengths))]
    records = [
        Record(f"sample_{i}", f"sample_{i} length={n} {header}", model.domain.decode(ids[i], at_eos=at_eos))
        for i, n in enumerate(lengths)
    ]
    return GenerationRun(records, ids, calls, trajectory)


def layout_rows(model: TrainedModel, lengths: Sequence[int]) -> tuple[Tensor, list[slice]]:
    """Rows (B, W) of framing + [MASK] * n + framing, padded; and each row's body positions."""
    head, tail = model.domain.framing()
    width = max(lengths) + len(head) + len(tail)
    tokens = torch.full((len(lengths), width), model.tokenizer.pad_token_id, dtype=torch.long)  # (B, W)
    bodies = []
    for row, n in enumerate(lengths):
        tokens[row, : len(head) + n + len(tail)] = torch.tensor([*head, *[model.mask_id] * n, *tail])
        bodies.append(slice(len(head), len(head) + n))
    return tokens, bodies


def _decode_window(
    model: TrainedModel,
    lengths: list[int],
    settings: SamplingSettings,
    banned: Sequence[int],
    generator: torch.Generator,
    class_labels: Tensor | None,
    on_step: StepCallback | None,
    record: bool,
) -> tuple[SamplingResult, list[slice]]:
    """Rows of framing around [MASK] bodies, denoised by the sampling loop."""
    tokens, bodies = layout_rows(model, lengths)
    result = denoise(
        model, tokens, settings, banned=banned, attention_mask=tokens != model.tokenizer.pad_token_id,
        class_labels=class_labels, generator=generator, record=record, on_step=on_step,
    )  # fmt: skip
    return result, bodies


def _decode_left_to_right(
    model: TrainedModel,
    lengths: list[int],
    settings: SamplingSettings,
    banned: Sequence[int],
    generator: torch.Generator,
    class_labels: Tensor | None,
    on_step: StepCallback | None,
    record: bool,
) -> tuple[SamplingResult, list[slice]]:
    """The autoregressive baseline: after its [MASK] start symbol and the domain's head, one token per call (no
    steps to report or record)."""
    head, _ = model.domain.framing()
    prefix = torch.tensor([[model.mask_id, *head]] * len(lengths))  # (B, 1 + |head|)
    filters = settings.filters(banned, model.mask_id)
    result = generate_autoregressive(
        model.network, prefix, max(lengths), filters=filters, class_labels=class_labels, generator=generator
    )
    return result, [slice(0, n) for n in lengths]


Decoder = Callable[
    [
        TrainedModel,
        list[int],
        SamplingSettings,
        Sequence[int],
        torch.Generator,
        Tensor | None,
        StepCallback | None,
        bool,
    ],
    tuple[SamplingResult, list[slice]],
]
"""(model, lengths, settings, banned, generator, class_labels, on_step, record) -> the run and each row's body."""

DECODERS: dict[Decoding, Decoder] = {
    Decoding.WINDOW: _decode_window,
    Decoding.LEFT_TO_RIGHT: _decode_left_to_right,
    Decoding.BLOCKS: decode_blocks,
}
"""The generation routine of each way an objective decodes (`Objective.decoding`)."""
