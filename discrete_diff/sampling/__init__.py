"""Sampling: one loop (`run_sampler`), strategies that plug into it, and logit filters."""

from .filters import BanTokens, Temperature
from .loop import SamplingResult, run_sampler
from .strategies import Ancestral, Strategy

__all__ = ["Ancestral", "BanTokens", "SamplingResult", "Strategy", "Temperature", "run_sampler"]
