"""Sampling: one loop (`run_sampler`), strategies that plug into it, and logit filters."""

from .blocks import Blocks
from .confidence import CONFIDENCES, ConfidenceUnmasking, MaxProbability, NegativeEntropy, TopTwoMargin
from .filters import BanTokens, RepetitionPenalty, Temperature, TopK, TopP
from .loop import SamplingResult, run_sampler
from .registry import STRATEGIES, StrategyOptions, make_filters, make_strategy
from .remasking import Remasking
from .strategies import Ancestral, FirstHitting, SamplerContext, StepPlan, Strategy
from .trajectory import Trajectory

__all__ = [
    "CONFIDENCES",
    "STRATEGIES",
    "Ancestral",
    "BanTokens",
    "Blocks",
    "ConfidenceUnmasking",
    "FirstHitting",
    "MaxProbability",
    "NegativeEntropy",
    "Remasking",
    "RepetitionPenalty",
    "SamplerContext",
    "SamplingResult",
    "StepPlan",
    "Strategy",
    "StrategyOptions",
    "Temperature",
    "TopK",
    "TopP",
    "TopTwoMargin",
    "Trajectory",
    "make_filters",
    "make_strategy",
    "run_sampler",
]
