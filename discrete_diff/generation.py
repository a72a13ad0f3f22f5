"""Generation from a trained model through the one sampling loop: unconditional (all-[MASK]) or with pinned tokens."""

from __future__ import annotations

import torch
from torch import Tensor

from .autoregressive import generate_autoregressive
from .checkpoint import TrainedModel
from .sampling import SamplingResult, run_sampler
from .sampling.options import SamplingSettings


def banned_ids(tokenizer) -> list[int]:
    """Tokens a sample must never contain: [MASK], [PAD], [BOS] and [UNK] where the tokenizer has them."""
    ids = [tokenizer.mask_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id]
    return [i for i in ids if i is not None]


def denoise(
    model: TrainedModel,
    tokens: Tensor,
    settings: SamplingSettings,
    *,
    pinned: Tensor | None = None,
    attention_mask: Tensor | None = None,
    banned: list[int] | None = None,
    generator: torch.Generator | None = None,
    record: bool = False,
) -> SamplingResult:
    """Fill the [MASK] positions of tokens (B, L) with the model; `pinned` positions (default: the rest) stay.

    `banned` ids are never drawn (default: the tokenizer's [MASK], [PAD], [BOS], [UNK]).
    """
    strategy = settings.make_strategy(getattr(model.objective, "schedule", None))
    banned = banned_ids(model.tokenizer) if banned is None else banned
    filters = settings.make_filters(banned, model.mask_id)
    return run_sampler(
        model.network,
        tokens,
        mask_id=model.mask_id,
        strategy=strategy,
        num_steps=settings.steps,
        filters=filters,
        pinned=pinned,
        attention_mask=attention_mask,
        generator=generator,
        record=record,
    )


def generate_ids(
    model: TrainedModel,
    *,
    num_samples: int,
    length: int,
    steps: int | None = None,
    seed: int = 0,
    temperature: float | None = None,
    settings: SamplingSettings | None = None,
    batch_size: int = 64,
) -> tuple[Tensor, int]:
    """Token ids (num_samples, length) and the total number of network calls.

    `steps` and `temperature`, when given, override those of `settings` (default: ancestral, 256 steps).
    """
    settings = settings or SamplingSettings()
    overrides = {k: v for k, v in {"steps": steps, "temperature": temperature}.items() if v is not None}
    settings = SamplingSettings(**{**settings.__dict__, **overrides})
    if num_samples < 1 or length < 1 or settings.steps < 1:
        raise ValueError("num_samples, length and steps must be positive")
    generator = torch.Generator().manual_seed(seed)
    outputs, calls = [], 0
    for start in range(0, num_samples, batch_size):
        size = min(batch_size, num_samples - start)
        tokens = torch.full((size, length), model.mask_id, dtype=torch.long)  # (B, L)
        if model.objective.causal:  # the AR baseline decodes left to right, after its [MASK] start symbol
            filters = settings.make_filters(banned_ids(model.tokenizer), model.mask_id)
            result = generate_autoregressive(model.network, tokens[:, :1], length, filters=filters, generator=generator)
        else:
            result = denoise(model, tokens, settings, generator=generator)
        outputs.append(result.tokens)
        calls += result.network_calls
    return torch.cat(outputs), calls


def generate_text(model: TrainedModel, **kwargs) -> list[str]:
    ids, _ = generate_ids(model, **kwargs)
    return model.tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)
