"""Corpora named on the Hugging Face hub: `hf:NAME[:CONFIG][@SPLIT]`, fetched once into a save_to_disk folder.

The folder (under `data_dir/hf/`) is then read like any local dataset: streamed record batch by record batch, and
fingerprinted by its files. Like the built-in corpora, a fetched dataset is not fetched again; delete its folder
to take a newer revision.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..atomic_files import atomic_directory
from ..errors import UserInputError
from .dataset_files import EXTRA_HINT

PREFIX = "hf:"
_SPEC = re.compile(r"hf:(?P<name>[\w.-]+(?:/[\w.-]+)?)(?::(?P<config>[\w.-]+))?(?:@(?P<split>[\w.-]+))?")


def is_hub_name(corpus: str) -> bool:
    return corpus.startswith(PREFIX)


def fetch_hub_dataset(corpus: str, data_dir: str | Path) -> Path:
    """The local save_to_disk folder of `hf:NAME[:CONFIG][@SPLIT]` (split: train by default), fetched on first use."""
    match = _SPEC.fullmatch(corpus)
    if match is None:
        raise UserInputError(f"{corpus}: write a hub dataset as hf:NAME, hf:NAME:CONFIG or hf:NAME:CONFIG@SPLIT")
    name, config, split = match["name"], match["config"], match["split"] or "train"
    target = Path(data_dir).expanduser() / "hf" / name.replace("/", "__") / (config or "default") / split
    if (target / "state.json").is_file():
        return target
    try:
        import datasets
    except ImportError:
        raise UserInputError(f"{corpus}: loading a hub dataset needs the 'datasets' extra: {EXTRA_HINT}") from None
    with atomic_directory(target) as staging:
        try:
            dataset = datasets.load_dataset(name, config, split=split)
            dataset.save_to_disk(str(staging))
        except Exception as error:  # network, unknown names, configs and splits all arrive as different types
            reason = " ".join(str(error).split())[:200]
            raise UserInputError(f"{corpus}: cannot load it from the Hugging Face hub ({reason})") from None
    return target
