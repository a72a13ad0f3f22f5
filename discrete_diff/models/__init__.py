"""Denoiser backbones, all called through `discrete_diff.denoiser.DenoiserInput`."""

from .build import build_network, describe_network
from .kv_cache import KVCache
from .transformer import Transformer, TransformerConfig, with_time_embedding

__all__ = ["KVCache", "Transformer", "TransformerConfig", "build_network", "describe_network", "with_time_embedding"]
