"""The sampling options every generating command shares, turned into one `SamplingSettings`.

Defaults are not retyped here: an option left out keeps the library's default (SamplingSettings and each
strategy's dataclass), so the CLI, the pipeline and the web app draw the same samples for the same seed.
"""

from __future__ import annotations

import argparse
from dataclasses import fields, replace

from ..errors import UserInputError
from ..sampling import CONFIDENCES, GUIDANCE_SCHEDULES, STRATEGIES, SamplingSettings, strategy_named
from ..sampling.bidirectional_cache import CACHE_KINDS

STRATEGY_OPTIONS = {
    "confidence": {"confidence": "confidence", "reveals_per_step": "reveals_per_step"},
    "remasking": {"remask_eta": "eta"},
    "spans": {"span_length": "span_length", "inner_strategy": "inner"},
    "threshold": {"threshold": "threshold", "max_per_call": "max_per_call", "argmax": "argmax"},
}
"""Strategy name -> {option dest: the strategy dataclass field it sets}."""

FLAGS = {"eta": "--remask-eta", "inner": "--inner-strategy", "lengths": "--length"}
"""Library argument names whose flag is not simply --name-with-dashes."""


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sampling (defaults: discrete_diff.sampling.SamplingSettings)")
    default = SamplingSettings()
    group.add_argument("--strategy", choices=sorted(STRATEGIES), help="reverse-process strategy (default: ancestral)")
    group.add_argument(
        "--steps", type=int, help=f"reverse-process steps (default: a distilled model's own, else {default.steps})"
    )
    group.add_argument("--temperature", type=float, help=f"divide logits by this (default: {default.temperature})")
    group.add_argument("--top-k", type=int, help="keep the k most likely tokens per position")
    group.add_argument("--top-p", type=float, help="nucleus filter: keep tokens up to probability p")
    group.add_argument("--repetition-penalty", type=float, help="> 1 discourages tokens already in the sequence")
    group.add_argument(
        "--confidence", choices=sorted(CONFIDENCES), help="confidence strategy: how sureness is measured"
    )
    group.add_argument("--reveals-per-step", type=int, help="confidence strategy: reveal this many per step")
    group.add_argument("--remask-eta", type=float, help="remasking strategy: cap on the remasking probability")
    group.add_argument(
        "--threshold", type=float, help="threshold strategy: reveal every blank whose top probability is above this"
    )
    group.add_argument("--max-per-call", type=int, help="threshold strategy: reveal at most this many per call")
    group.add_argument(
        "--argmax",
        action="store_const",
        const=True,
        help="threshold strategy: take the most likely token instead of drawing it (Fast-dLLM)",
    )
    group.add_argument("--span-length", type=int, help="spans strategy: positions per span, filled left to right")
    group.add_argument(
        "--inner-strategy", choices=sorted(set(STRATEGIES) - {"spans"}), help="spans strategy: fills each span"
    )
    group.add_argument(
        "--cache",
        choices=CACHE_KINDS,
        help="approximate key-value cache: prefix or dual (Fast-dLLM; with --strategy spans, refreshed when a span "
        "completes) or dkv (positions that did not change reuse theirs) (default: none)",
    )
    group.add_argument(
        "--cache-refresh", type=int, help="with --cache: also recompute every position every N calls (1 = exact)"
    )
    group.add_argument(
        "--guidance-scale",
        type=float,
        help="classifier-free guidance w toward --label (infill: and the prompt); 0 = plain conditional sampling "
        f"(default: {default.guidance_scale})",
    )
    group.add_argument(
        "--guidance-schedule",
        choices=GUIDANCE_SCHEDULES,
        help="guidance over the run: constant, weak early and w at the end (linear, cosine), or none in the first half "
        "(late: skips the unconditional pass there) "
        f"(default: {default.guidance_schedule})",
    )


def add_label_argument(parser: argparse.ArgumentParser) -> None:
    """`--label`: what a model trained with labels is conditioned on (and guided toward)."""
    parser.add_argument(
        "--label",
        default=None,
        help="for a model trained with labels: condition on this one (default: none, the unconditional model)",
    )


def sampling_flags_given(args: argparse.Namespace) -> list[str]:
    """The sampling flags the user set explicitly."""
    dests = ["strategy", "steps", "temperature", "top_k", "top_p", "repetition_penalty", "guidance_scale"]
    dests += ["guidance_schedule", "cache", "cache_refresh"]
    dests += [dest for options in STRATEGY_OPTIONS.values() for dest in options]
    return [f"--{dest.replace('_', '-')}" for dest in dests if getattr(args, dest, None) is not None]


def settings_from_args(args: argparse.Namespace, defaults: SamplingSettings | None = None) -> SamplingSettings:
    """SamplingSettings from the options over `defaults` (the model's: `TrainedModel.default_settings`); an option
    of a strategy that is not in use is refused."""
    name = args.strategy or "ancestral"
    in_use = {name, (args.inner_strategy or "ancestral") if name == "spans" else name}
    for owner, options in STRATEGY_OPTIONS.items():
        for dest in options:
            if getattr(args, dest) is not None and owner not in in_use:
                raise UserInputError(f"--{dest.replace('_', '-')} applies to --strategy {owner}, not {name}")
    if name == "spans":
        inner = _strategy(args.inner_strategy or "ancestral", args)
        strategy = strategy_named("spans", inner=inner, **_own_fields("spans", args))
    else:
        strategy = _strategy(name, args)
    given = {
        f.name: getattr(args, f.name)
        for f in fields(SamplingSettings)
        if f.name != "strategy" and getattr(args, f.name, None) is not None
    }
    return replace(defaults or SamplingSettings(), strategy=strategy, **given)


def _strategy(name: str, args: argparse.Namespace):
    return strategy_named(name, **_own_fields(name, args))


def _own_fields(name: str, args: argparse.Namespace) -> dict:
    """The strategy's dataclass fields the user set (its inner strategy excepted)."""
    values = {field: getattr(args, dest) for dest, field in STRATEGY_OPTIONS.get(name, {}).items() if field != "inner"}
    values = {k: v for k, v in values.items() if v is not None}
    if "confidence" in values:
        values["confidence"] = CONFIDENCES[values["confidence"]]()
    return values
