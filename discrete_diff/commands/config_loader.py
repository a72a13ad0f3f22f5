"""Training configs are read as YAML with old class paths mapped to where the classes live now.

Configs written for 0.2 name the data modules under `discrete_diff.text` and `discrete_diff.protein`; they moved to
the training layer. jsonargparse reads every --config through the loader of the parser's mode, so a mode whose
loader converts class paths keeps those configs (and the configs saved beside old runs) working.
"""

from __future__ import annotations

from typing import Any

import yaml
from jsonargparse import get_loader, set_loader

from ..specs import RENAMED

PARSER_MODE = "yaml_current_class_paths"

_read_yaml = get_loader("yaml")


def current_class_paths(value: Any) -> Any:
    """The loaded config with every string that is an old class path replaced by the current one."""
    if isinstance(value, dict):
        return {key: current_class_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [current_class_paths(item) for item in value]
    return RENAMED.get(value, value) if isinstance(value, str) else value


def load_config(text: str) -> Any:
    return current_class_paths(_read_yaml(text))


set_loader(PARSER_MODE, load_config, exceptions=(yaml.YAMLError,))
