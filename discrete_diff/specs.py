"""Objects as plain data ({"class_path", "init_args"}) for checkpoints, rebuilt only from an allowlist.

A checkpoint a user was handed must not be able to name arbitrary code: `build` accepts only classes
defined inside this package that subclass the expected base.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from .errors import UserInputError

T = TypeVar("T")

RENAMED = {
    "discrete_diff.autoregressive.objective.Autoregressive": "discrete_diff.objectives.Autoregressive",
    "discrete_diff.autoregressive.Autoregressive": "discrete_diff.objectives.Autoregressive",
    "discrete_diff.text.datamodule.TextDataModule": "discrete_diff.training.text_data.TextDataModule",
    "discrete_diff.protein.datamodule.ProteinDataModule": "discrete_diff.training.protein_data.ProteinDataModule",
}
"""Class paths older versions recorded (in checkpoints and in YAML configs) -> where those classes live now."""


def to_spec(obj: Any) -> dict[str, Any]:
    """The object's class and its attributes, which by convention are its constructor's arguments."""
    cls = type(obj)
    args = {k: to_spec(v) if hasattr(v, "__dict__") and not isinstance(v, type) else v for k, v in vars(obj).items()}
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": args}


def build(spec: dict[str, Any], base: type[T]) -> T:
    """Instantiate a spec, refusing any class outside this package or not derived from `base`."""
    path = spec.get("class_path", "")
    path = RENAMED.get(path, path)
    module_name, _, class_name = path.rpartition(".")
    if not module_name.startswith(__package__ + "."):
        raise UserInputError(f"refusing to build {path!r}: only {__package__} classes may be named in a checkpoint")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise UserInputError(f"{path!r} is not a {base.__name__}")
    args = {k: _build_arg(v) for k, v in spec.get("init_args", {}).items()}
    return cls(**args)


def _build_arg(value: Any) -> Any:
    if isinstance(value, dict) and "class_path" in value:
        return build(value, object)
    return value
