"""The registry of domains: stored names -> Domain classes.

A domain is stored in checkpoints and exported configs by name, never guessed from a vocabulary. A new kind of
sequence (e.g. DNA) is one new module with a `Domain` subclass (see discrete_diff/domain.py), listed here.
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedTokenizerFast

from .domain import Domain
from .errors import UserInputError
from .protein.domain import ProteinDomain
from .text.domain import TextDomain

DOMAINS: dict[str, type[Domain]] = {domain.name: domain for domain in (TextDomain, ProteinDomain)}


def build_domain(description: dict[str, Any], tokenizer: PreTrainedTokenizerFast) -> Domain:
    """The Domain a checkpoint or config.json names."""
    name = description.get("name")
    if name not in DOMAINS:
        raise UserInputError(f"unknown domain {name!r}; known: {', '.join(sorted(DOMAINS))}")
    return DOMAINS[name](tokenizer)
