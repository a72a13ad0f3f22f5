"""The autoregressive baseline: the same Transformer with causal attention, trained and evaluated exactly."""

from .kv_cache import KVCache, generate_autoregressive
from .objective import Autoregressive, shift_right

__all__ = ["Autoregressive", "KVCache", "generate_autoregressive", "shift_right"]
