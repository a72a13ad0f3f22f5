"""Model directories written by `discrete-diff export`, read without transformers' Auto classes.

config.json, model.safetensors and tokenizer.json are read directly (safetensors, never a pickle), after the
same checks any model directory gets: no remote code, no pickled weights, a matching vocabulary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor
from transformers import PreTrainedTokenizerFast

from ..errors import UserInputError
from ..model_files import read_json, refuse_remote_code, require_safetensors
from .assemble import assemble
from .trained import TrainedModel

MODEL_TYPE = "discrete_diff"
WEIGHTS_PREFIX = "denoiser."
"""The exported model (DiscreteDiffForMaskedLM) holds the denoiser under this name."""


def model_from_directory(path: str | Path) -> TrainedModel:
    """Load a directory written by `discrete-diff export`: weights in eval mode, tokenizer, domain, objective."""
    directory = Path(path).expanduser()
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise UserInputError(f"{directory}: no config.json (not a model directory)")
    refuse_remote_code(directory)
    config = read_json(config_path)
    if config.get("model_type") != MODEL_TYPE:
        raise UserInputError(
            f"{directory}: a {config.get('model_type')!r} model, not a discrete-diff one; to fine-tune it as a "
            f"denoiser select it in a training config (model.network: {{path: {directory}}})"
        )
    require_safetensors(directory)
    tokenizer = _tokenizer(directory, config)
    meta = {
        "network": config["network"] if config.get("network") else {"masked_lm": config.get("backbone")},
        "objective": config.get("objective"),
        "data": config.get("data") or {},
        **{key: config[key] for key in ("domain", "format_version") if config.get(key) is not None},
    }
    if not meta["objective"] or meta["network"] == {"masked_lm": None}:
        raise UserInputError(f"{config_path}: missing the network or the objective")
    weights = {k[len(WEIGHTS_PREFIX) :]: v for k, v in _read_weights(directory).items() if k.startswith(WEIGHTS_PREFIX)}
    return assemble(meta, weights, str(directory), global_step=int(config.get("global_step", 0)), tokenizer=tokenizer)


def _tokenizer(directory: Path, config: dict[str, Any]) -> PreTrainedTokenizerFast:
    if not (directory / "tokenizer.json").is_file():
        raise UserInputError(f"{directory}: no tokenizer.json")
    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(directory)
    except Exception as error:  # tokenizer JSON that transformers cannot read fails in many ways
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UserInputError(f"{directory}: tokenizer.json unreadable ({reason})") from None
    if len(tokenizer) != config.get("vocab_size"):
        raise UserInputError(
            f"{directory}: vocabulary does not match the model: tokenizer.json has {len(tokenizer)} tokens, "
            f"config.json vocab_size {config.get('vocab_size')}"
        )
    if tokenizer.mask_token_id is None or tokenizer.mask_token_id != config.get("mask_token_id"):
        raise UserInputError(
            f"{directory}: the tokenizer's mask token (id {tokenizer.mask_token_id}) is not the model's "
            f"(id {config.get('mask_token_id')})"
        )
    return tokenizer


def _read_weights(directory: Path) -> dict[str, Tensor]:
    """model.safetensors, or every shard named by model.safetensors.index.json."""
    single = directory / "model.safetensors"
    files = (
        [single]
        if single.is_file()
        else sorted(
            {directory / name for name in read_json(directory / "model.safetensors.index.json")["weight_map"].values()}
        )
    )
    weights: dict[str, Tensor] = {}
    for file in files:
        try:
            weights.update(load_file(file))
        except (SafetensorError, OSError) as error:
            raise UserInputError(f"{file}: not readable safetensors ({error})") from None
    return weights
