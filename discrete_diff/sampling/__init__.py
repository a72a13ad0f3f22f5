"""Sampling: one loop (`run_sampler`), strategies that plug into it, logit filters, and their settings."""

from .confidence import ConfidenceUnmasking, MaxProbability, NegativeEntropy, TopTwoMargin
from .filters import BanTokens, LogitFilter, RepetitionPenalty, Temperature, TopK, TopP
from .guidance import GUIDANCE_SCHEDULES, Guidance
from .loop import SamplingResult, StepCallback, run_sampler
from .remasking import Remasking
from .settings import CONFIDENCES, STRATEGIES, SamplingSettings, strategy_named
from .spans import Spans
from .strategies import Ancestral, FirstHitting, SamplerContext, StepPlan, Strategy
from .threshold import ThresholdUnmasking
from .trajectory import Trajectory

__all__ = [
    "CONFIDENCES",
    "GUIDANCE_SCHEDULES",
    "STRATEGIES",
    "Ancestral",
    "BanTokens",
    "ConfidenceUnmasking",
    "FirstHitting",
    "Guidance",
    "LogitFilter",
    "MaxProbability",
    "NegativeEntropy",
    "Remasking",
    "RepetitionPenalty",
    "SamplerContext",
    "SamplingResult",
    "SamplingSettings",
    "Spans",
    "StepCallback",
    "StepPlan",
    "Strategy",
    "Temperature",
    "ThresholdUnmasking",
    "TopK",
    "TopP",
    "TopTwoMargin",
    "Trajectory",
    "run_sampler",
    "strategy_named",
]
