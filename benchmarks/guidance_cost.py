"""The cost part of benchmarks/guidance.py: guided against unguided sampling time of fresh networks shaped as the
labelled configs (time depends on the network's shape, not its weights), the two passes as one call on 2B rows and
as two calls of B rows, and the batch size from which two calls win (`SPLIT_FROM_ROWS`'s rule); beside them the
`late` schedule (guidance in the later half only: the unconditional pass skipped in the first), with the rule in
code."""

from __future__ import annotations

import statistics
import string
from dataclasses import replace

import common
import torch

from discrete_diff.commands.config_files import load_config
from discrete_diff.models.transformer import Transformer, TransformerConfig
from discrete_diff.protein.tokenizer import build_protein_tokenizer
from discrete_diff.sampling import Ancestral, Guidance, run_sampler
from discrete_diff.sampling.guidance import SPLIT_FROM_ROWS
from discrete_diff.schedules import LogLinearSchedule
from discrete_diff.text.tokenizers import CharacterTokenizer

COST_SHAPES = {"proteins": ("families", 100), "text": ("shakespeare_genre", 256)}
"""The config whose network shape is timed, and the sequence length sampled (a typical protein domain; a text
sample of the genre part)."""


def cost_network(part: str, overrides: dict) -> tuple[torch.nn.Module, int]:
    """A fresh network shaped as the part's config (with `overrides`), with two labels and the null label, and its
    [MASK] id. Text: a character vocabulary of the printable ASCII set, about the size Shakespeare's has."""
    shape = {
        key: load_config(COST_SHAPES[part][0])["model"]["network"][key]
        for key in ("d_model", "n_layers", "n_heads", "max_length")
    }
    tokenizer = (build_protein_tokenizer() if part == "proteins"
                 else CharacterTokenizer().build(lambda: [string.printable]))  # fmt: skip
    config = TransformerConfig(**{**shape, **overrides}, num_labels=2)
    return Transformer(config, len(tokenizer)).eval(), tokenizer.mask_token_id


def sampling_cost(network: torch.nn.Module, mask_id: int, length: int, batch: int, steps: int, repeats: int) -> dict:
    """Median seconds of ancestral sampling of `batch` rows: unguided, and guided (w = 2, label 0) with the passes
    as one call on 2B rows and as two calls of B rows, and with the late schedule (the rule in code); each way once
    to warm up, then the ways interleaved."""
    labels = torch.zeros(batch, dtype=torch.long)  # (B,)
    tokens = torch.full((batch, length), mask_id)  # (B, L)
    guidance = Guidance(2.0, labels=torch.full_like(labels, 2))  # the null label
    ways = {"unguided": None, "one call": replace(guidance, split_from=batch + 1),
            "two calls": replace(guidance, split_from=batch), "late": replace(guidance, schedule="late")}  # fmt: skip

    def once(way: Guidance | None) -> None:
        run_sampler(network, tokens, mask_id=mask_id, strategy=Ancestral(), num_steps=steps,
                    schedule=LogLinearSchedule(), class_labels=labels, guidance=way)  # fmt: skip

    times: dict[str, list[float]] = {name: [] for name in ways}
    for way in ways.values():
        once(way)
    for _ in range(repeats):
        for name, way in ways.items():
            times[name].append(common.timed(lambda way=way: once(way))[0])
    median = {name: statistics.median(values) for name, values in times.items()}
    in_code = "two calls" if batch >= SPLIT_FROM_ROWS else "one call"
    return {"batch": batch, "length": length, "steps": steps, "unguided s": median["unguided"],
            "one call s": median["one call"], "two calls s": median["two calls"],
            "one call ratio": median["one call"] / median["unguided"],
            "two calls ratio": median["two calls"] / median["unguided"],
            "faster": min(("one call", "two calls"), key=median.get), "in code": in_code,
            "ratio": median[in_code] / median["unguided"], "late s": median["late"],
            "late ratio": median["late"] / median["unguided"]}  # fmt: skip


def cost_part(size: dict) -> list[dict]:
    timing = size["timing"]
    rows = []
    for part, (_, length) in COST_SHAPES.items():
        network, mask_id = cost_network(part, timing["network"])
        length = min(length, network.config.max_length)
        rows += [{"model": part, **sampling_cost(network, mask_id, length, batch, timing["steps"], timing["repeats"])}
                 for batch in timing["batches"]]  # fmt: skip
    return rows


def split_rule(cost: list[dict]) -> int | None:
    """The smallest measured batch size from which two calls were faster at every measured size, for every model
    (None: one call was faster at the largest size)."""
    batches = sorted({row["batch"] for row in cost})
    faster = {b: all(row["faster"] == "two calls" for row in cost if row["batch"] == b) for b in batches}
    rule = None
    for batch in reversed(batches):
        if not faster[batch]:
            break
        rule = batch
    return rule
