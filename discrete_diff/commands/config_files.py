"""Training configs by name or path, composed from their includes before LightningCLI reads them.

A config may say `include: NAME` (or a list of names) to start from other configs and state only what differs,
and may write a nested option as one dotted top-level key, as on the command line (`trainer.max_steps: 2000`).
An included name is looked up beside the including file first, then among the configs shipped in the package
(`discrete_diff/configs`). Merging: mappings merge key by key, any other value (a list included) replaces the
included one, and a mapping naming a different `class_path` replaces the included mapping whole (another class's
init_args would not fit it). The composed config reaches LightningCLI as one YAML text.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserInputError
from ..specs import RENAMED
from .config_shape import check_option_groups

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
"""The configs shipped in the package."""

INCLUDE_KEY = "include"

PATH_KEYS = (("data", "init_args", "label_csv"),)
"""Relative paths looked up beside the config file that states them (falling back to the data module's rules)."""

RENAMED_DATA_KEYS = {"block_length": "max_length"}
"""Data-module options renamed in 0.3.0: old name -> new name (an old config still trains, with a notice)."""

log = logging.getLogger(__name__)


def config_names() -> list[str]:
    """The names of the packaged configs, e.g. `shakespeare_char`, `distill/hemopexin`."""
    return sorted(path.relative_to(CONFIG_DIR).with_suffix("").as_posix() for path in CONFIG_DIR.rglob("*.yaml"))


def find_config(name: str, beside: Path | None = None, including: tuple[Path, ...] = ()) -> Path:
    """A config file: a path (`.yaml` optional; relative to `beside`, the including file's folder, else to the
    working directory) or else a packaged name. A file never includes itself by name: a user's `tiny.yaml` may
    say `include: tiny` and mean the packaged one."""
    given = Path(name).expanduser()
    folder = Path.cwd() if beside is None else beside
    for candidate in (folder / given, folder / f"{given}.yaml"):
        if candidate.is_file() and candidate.resolve() not in including[-1:]:
            return candidate
    packaged = name.removesuffix(".yaml").removesuffix(".yml")
    if packaged in config_names():
        return CONFIG_DIR / f"{packaged}.yaml"
    raise UserInputError(f"--config {name}: no such file or packaged config (packaged: {', '.join(config_names())})")


def load_config(name: str) -> dict[str, Any]:
    """The composed config `name` (a path or a packaged name), its CSV logger named after it."""
    path = find_config(name)
    config = _compose(path, ())
    _name_logger(config, _run_name(path))
    return config


def expand_config_args(args: list[str]) -> list[str]:
    """Command-line arguments with every `--config NAME_OR_PATH` replaced by the composed config's YAML text (an
    inline YAML mapping is composed too) and renamed options given their new names."""
    expanded: list[str] = []
    pending = False
    for arg in args:
        if pending:
            expanded.append(_composed_text(arg))
            pending = False
        elif arg == "--config":
            expanded.append(arg)
            pending = True
        elif arg.startswith("--config="):
            expanded.append("--config=" + _composed_text(arg.removeprefix("--config=")))
        else:
            expanded.append(_renamed_option(arg))
    return expanded


def _composed_text(value: str) -> str:
    inline = _inline_yaml(value)
    config = _compose_mapping(inline, "--config", Path.cwd(), ()) if inline is not None else load_config(value)
    return yaml.safe_dump(config, sort_keys=False)


def _inline_yaml(value: str) -> dict | None:
    """A `--config` value that is a YAML mapping rather than a name (LightningCLI accepts both)."""
    if ":" not in value or Path(value).expanduser().is_file():
        return None
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _renamed_option(arg: str) -> str:
    flag, sep, value = arg.partition("=")
    prefix, _, key = flag.rpartition(".")
    if prefix in ("--data.init_args", "--data") and key in RENAMED_DATA_KEYS:
        new = f"{prefix}.{RENAMED_DATA_KEYS[key]}"
        log.warning("%s is now %s (renamed in discrete-diff 0.3.0)", flag, new)
        return new + sep + value
    return arg


def _compose(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    if path.resolve() in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path.resolve()))
        raise UserInputError(f"{path}: configs include each other ({cycle})")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())
        raise UserInputError(f"{path}: not a readable YAML config ({reason})") from None
    return _compose_mapping({} if config is None else config, str(path), path.parent, (*chain, path.resolve()))


def _compose_mapping(config: object, source: str, folder: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise UserInputError(f"{source}: a config must be a mapping of options, got {config!r:.40}")
    config = _current_class_paths(_undotted(config))
    check_option_groups(source, config)
    includes = config.pop(INCLUDE_KEY, [])
    includes = [includes] if isinstance(includes, str) else includes
    if not isinstance(includes, list) or not all(isinstance(name, str) for name in includes):
        raise UserInputError(f"{source}: '{INCLUDE_KEY}' must be a config name or a list of them, got {includes!r:.40}")
    _rename_data_keys(config, source)
    _resolve_paths(config, folder)
    composed: dict[str, Any] = {}
    for name in includes:
        composed = _merge(composed, _compose(find_config(name, folder, chain), chain))
    return _merge(composed, config)


def _current_class_paths(value: Any) -> Any:
    """The config with every old class path (a data module before 0.3.0 moved it) replaced by the current one."""
    if isinstance(value, dict):
        return {key: _current_class_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_current_class_paths(item) for item in value]
    return RENAMED.get(value, value) if isinstance(value, str) else value


def _undotted(config: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys `a.b.c: v` as `a: {b: {c: v}}` (only top-level keys: a label name may hold a dot)."""
    nested: dict[str, Any] = {}
    for key, value in config.items():
        path = key.split(".") if isinstance(key, str) else [key]
        for part in reversed(path[1:]):
            value = {part: value}
        nested = _merge(nested, {path[0]: value})
    return nested


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`overlay` over `base`: mappings merge key by key unless they name different classes; other values replace."""
    merged = dict(base)
    for key, value in overlay.items():
        below = merged.get(key)
        if isinstance(below, dict) and isinstance(value, dict) and _same_class(below, value):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged


def _same_class(below: dict[str, Any], value: dict[str, Any]) -> bool:
    return "class_path" not in below or "class_path" not in value or below["class_path"] == value["class_path"]


def _rename_data_keys(config: dict[str, Any], source: str) -> None:
    data = config.get("data")
    init = data.get("init_args") if isinstance(data, dict) else None
    if not isinstance(init, dict):
        return
    for old, new in RENAMED_DATA_KEYS.items():
        if old in init:
            log.warning("%s: data.init_args.%s is now %s (renamed in discrete-diff 0.3.0)", source, old, new)
            data["init_args"] = init = {(new if key == old else key): value for key, value in init.items()}


def _resolve_paths(config: dict[str, Any], folder: Path) -> None:
    for *parents, key in PATH_KEYS:
        node: Any = config
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, str) and not Path(value).expanduser().is_absolute() and (folder / value).is_file():
            node[key] = str((folder / value).resolve())


def _run_name(path: Path) -> str:
    """A packaged config's name with `_` for `/` (distill/hemopexin -> distill_hemopexin), else the file's stem."""
    try:
        return path.resolve().relative_to(CONFIG_DIR).with_suffix("").as_posix().replace("/", "_")
    except ValueError:
        return path.stem


def _name_logger(config: dict[str, Any], name: str) -> None:
    trainer = config.get("trainer")
    logger = trainer.get("logger") if isinstance(trainer, dict) else None
    init = logger.get("init_args") if isinstance(logger, dict) else None
    if isinstance(init, dict):
        init.setdefault("name", name)
