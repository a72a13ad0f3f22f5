"""Networks as plain data: what a checkpoint records about its denoiser, and how to rebuild it from that."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from torch import nn

from .pretrained import MaskedLMAdapter
from .transformer import Transformer, TransformerConfig


def describe_network(network: nn.Module) -> dict[str, Any]:
    """Plain data: our Transformer's config fields, or {"masked_lm": the backbone's transformers config}."""
    if isinstance(network, MaskedLMAdapter):
        return network.describe()
    if isinstance(network, Transformer):
        return asdict(network.config)
    raise TypeError(f"cannot describe a {type(network).__name__} denoiser")


def build_network(description: dict[str, Any], vocab_size: int) -> nn.Module:
    """A randomly initialised network of the recorded shape: our Transformer, or a transformers masked LM."""
    if "masked_lm" in description:
        return MaskedLMAdapter.from_description(description, vocab_size)
    return Transformer(TransformerConfig(**description), vocab_size=vocab_size)
