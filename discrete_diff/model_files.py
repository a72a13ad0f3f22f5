"""Checks a model directory must pass before anything reads it: no remote code, no pickles, complete weights.

Each failure is one UserInputError naming the directory and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.utils import logging as transformers_logging

from .errors import UserInputError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")

SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
CODE_FILES = ("config.json", "tokenizer_config.json")


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserInputError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a JSON object")
    return data


def refuse_remote_code(directory: Path) -> None:
    """`auto_map` names Python classes shipped in the directory; loading them would run that code."""
    for name in CODE_FILES:
        path = directory / name
        if path.is_file() and "auto_map" in read_json(path):
            raise UserInputError(
                f"{path}: needs remote code (its auto_map names custom classes); refused: discrete-diff only "
                "loads model types built into transformers and never runs code from a model directory"
            )


def model_config(directory: str | Path) -> tuple[Path, dict[str, Any]]:
    """The directory and its config.json, after checking the model type is one transformers knows natively."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise UserInputError(f"{directory}: model directory not found")
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise UserInputError(f"{directory}: no config.json (not a transformers model directory)")
    refuse_remote_code(directory)
    config = read_json(config_path)
    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise UserInputError(f"{config_path}: unknown model type {model_type!r} (not built into transformers)")
    return directory, config


def require_safetensors(directory: Path) -> None:
    if any((directory / name).is_file() for name in SAFETENSORS_FILES):
        return
    if any((directory / name).is_file() for name in PICKLE_FILES):
        raise UserInputError(
            f"{directory}: weights only as pytorch_model.bin (a pickle, never loaded here); convert them to "
            "safetensors where you trust the file: model.save_pretrained(dir, safe_serialization=True)"
        )
    raise UserInputError(f"{directory}: no model.safetensors weights")


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No load reports or progress bars while we load: we check the result and raise our own one-line errors."""
    verbosity, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


def require_complete(directory: Path, info: dict[str, Any], parameters: set[str]) -> None:
    """transformers fills missing or misshapen weights with random ones; a trained model must have none."""
    missing = sorted(k for k in info["missing_keys"] if k in parameters)
    if missing:
        raise UserInputError(f"{directory}: weights missing from model.safetensors: {missing[0]}")
    if info["mismatched_keys"]:
        key, stored, expected = sorted(info["mismatched_keys"])[0]
        raise UserInputError(
            f"{directory}: weights of the wrong shape in model.safetensors: {key} is {tuple(stored)}, "
            f"config.json needs {tuple(expected)}"
        )


def directory_tokenizer(path: str | Path):
    """The directory's tokenizer through AutoTokenizer (remote code refused), or None if it has none."""
    directory = Path(path).expanduser()
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        return None
    refuse_remote_code(directory)
    try:
        return AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
    except (OSError, ValueError) as error:
        raise UserInputError(f"{directory}: tokenizer could not be loaded ({' '.join(str(error).split())})") from None
