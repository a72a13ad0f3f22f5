"""A check jsonargparse does not make: a config section given as a plain value is silently dropped by it."""

from __future__ import annotations

from ..errors import UserInputError

OPTION_GROUPS = ("trainer", "model")
"""Config sections that hold options; jsonargparse silently drops a section given as anything but a mapping."""


def check_option_groups(source: str, config: dict) -> None:
    """Refuse `model: 0` and the like in one config file, naming the file and the section."""
    for group in OPTION_GROUPS:
        value = config.get(group)
        if value is not None and not isinstance(value, dict):
            raise UserInputError(f"{source}: '{group}' must be a mapping of options, got {value!r:.40}")
