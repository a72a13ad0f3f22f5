"""Unconditional generation from a trained model: all-[MASK] sequences through the sampling loop."""

from __future__ import annotations

import torch
from torch import Tensor

from .checkpoint import TrainedModel
from .sampling import Ancestral, BanTokens, Temperature, run_sampler
from .sampling.strategies import Strategy


def banned_ids(tokenizer) -> list[int]:
    """Tokens a sample must never contain: [MASK], [PAD], [BOS] and [UNK] where the tokenizer has them."""
    ids = [tokenizer.mask_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id]
    return [i for i in ids if i is not None]


def generate_ids(
    model: TrainedModel,
    *,
    num_samples: int,
    length: int,
    steps: int,
    seed: int = 0,
    temperature: float = 1.0,
    strategy: Strategy | None = None,
    batch_size: int = 64,
) -> tuple[Tensor, int]:
    """Token ids (num_samples, length) and the total number of network calls."""
    if num_samples < 1 or length < 1 or steps < 1:
        raise ValueError("num_samples, length and steps must be positive")
    schedule = getattr(model.objective, "schedule", None)
    strategy = strategy or Ancestral(schedule)
    filters = [BanTokens(banned_ids(model.tokenizer)), Temperature(temperature)]
    generator = torch.Generator().manual_seed(seed)
    outputs, calls = [], 0
    for start in range(0, num_samples, batch_size):
        size = min(batch_size, num_samples - start)
        tokens = torch.full((size, length), model.mask_id, dtype=torch.long)
        result = run_sampler(
            model.network,
            tokens,
            mask_id=model.mask_id,
            strategy=strategy,
            num_steps=steps,
            filters=filters,
            generator=generator,
        )
        outputs.append(result.tokens)
        calls += result.network_calls
    return torch.cat(outputs), calls


def generate_text(model: TrainedModel, **kwargs) -> list[str]:
    ids, _ = generate_ids(model, **kwargs)
    return model.tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)
