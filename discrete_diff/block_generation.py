"""Generation with a block-diffusion model: samples and continuations of any length, blocks left to right.

Steps are counted as for a masked-diffusion model of the training window: `SamplingSettings.steps` per window of
`max_length` tokens, so a block of B tokens gets steps * B / max_length of them (at least one), whatever the
sample's length. A row ends at [EOS] when [EOS] may be drawn, else at its requested length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor

from .inference import TrainedModel
from .objectives import BlockDiffusion, Decoding
from .sampling import SamplingResult, SamplingSettings, StepCallback
from .sampling.block_diffusion import generate_blocks


def steps_per_block(model: TrainedModel, settings: SamplingSettings) -> int:
    """The settings' steps per training window, shared out over its blocks."""
    block_size = block_objective(model).block_size
    return max(1, round(settings.steps * block_size / model.max_length))


def block_objective(model: TrainedModel) -> BlockDiffusion:
    """The model's objective, which decodes block by block (its block size and schedule drive the sampler)."""
    if model.objective.decoding is not Decoding.BLOCKS:
        raise TypeError(f"not a block-diffusion model: {type(model.objective).__name__}")
    return cast(BlockDiffusion, model.objective)


def continue_blocks(
    model: TrainedModel,
    prompt: Tensor,
    length: int,
    settings: SamplingSettings,
    *,
    banned: Sequence[int],
    generator: torch.Generator,
    class_labels: Tensor | None = None,
    on_step: StepCallback | None = None,
    stop_at_eos: bool = True,
) -> SamplingResult:
    """Up to `length` new tokens after each row of `prompt` (B, P); with `stop_at_eos`, generation ends once every
    row has drawn [EOS] (when [EOS] is not banned), else it writes exactly `length`. `class_labels` (B,) condition
    a labelled model; a guidance scale in `settings` steers toward them (the prompt is context for both passes)."""
    objective = block_objective(model)
    eos = model.tokenizer.eos_token_id
    return generate_blocks(
        model.network,
        prompt,
        length,
        block_size=objective.block_size,
        window=model.max_length,
        mask_id=model.mask_id,
        strategy=settings.strategy,
        steps_per_block=steps_per_block(model, settings),
        schedule=objective.schedule,
        filters=settings.filters(banned, model.mask_id),
        class_labels=class_labels,
        guidance=model.guidance(settings, class_labels),
        stop_id=eos if stop_at_eos and eos is not None and eos not in banned else None,
        generator=generator,
        on_step=on_step,
    )


def decode_blocks(
    model: TrainedModel,
    lengths: list[int],
    settings: SamplingSettings,
    banned: Sequence[int],
    generator: torch.Generator,
    class_labels: Tensor | None = None,
    on_step: StepCallback | None = None,
    record: bool = False,
) -> tuple[SamplingResult, list[slice]]:
    """Rows after the domain's head (conditioned on `class_labels` (B,) if given); each row's body ends at its
    length or before its [EOS]. Block runs keep no trajectory: `record` does not apply."""
    head, _ = model.domain.framing()
    prompt = torch.tensor([list(head)] * len(lengths), dtype=torch.long).reshape(len(lengths), len(head))
    result = continue_blocks(
        model, prompt, max(lengths), settings, banned=banned, generator=generator, class_labels=class_labels,
        on_step=on_step,
    )  # fmt: skip
    eos, bodies = model.tokenizer.eos_token_id, []
    for row, wanted in enumerate(lengths):
        stops = (result.tokens[row] == eos).nonzero()
        end = min(wanted, result.tokens.shape[1], int(stops[0]) if len(stops) else wanted)
        bodies.append(slice(0, end))
    return result, bodies
