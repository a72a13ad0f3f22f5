"""A check jsonargparse does not make: a config section given as a plain value is silently dropped by it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml
from lightning.pytorch.cli import ArgsType

from ..errors import UserInputError

OPTION_GROUPS = ("trainer", "model")
"""Config sections that hold options; jsonargparse silently drops a section given as anything but a mapping."""


def check_option_groups(args: ArgsType) -> None:
    """Refuse `model: 0` and the like in any --config, naming the file and the section."""
    for source, config in _config_files(args):
        for group in OPTION_GROUPS:
            value = config.get(group) if isinstance(config, dict) else None
            if value is not None and not isinstance(value, dict):
                raise UserInputError(f"{source}: '{group}' must be a mapping of options, got {value!r:.40}")


def _config_files(args: ArgsType) -> Iterator[tuple[str, object]]:
    """(source, parsed YAML) of each --config; ones that do not parse are left to jsonargparse to report."""
    args = list(args) if isinstance(args, list) else []
    for index, arg in enumerate(args):
        value = args[index + 1] if arg == "--config" and index + 1 < len(args) else None
        value = arg.removeprefix("--config=") if arg.startswith("--config=") else value
        if value is None:
            continue
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else value
            yield (str(path) if path.is_file() else "--config"), yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
