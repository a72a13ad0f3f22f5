"""A trained model as a `transformers` directory: config.json, model.safetensors, tokenizer.json (+ config).

`save_pretrained` writes to a staging directory beside the target and renames it into place, so a crash never
leaves half a model; `from_pretrained` checks the directory (no remote code, no pickles, matching vocabulary)
before anything reads it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from transformers import AutoConfig, AutoModelForMaskedLM, PreTrainedTokenizerFast

from ..checkpoint import TrainedModel
from ..errors import UserInputError
from ..models.transformer import Transformer
from ..objectives import Objective
from ..package_data import publish_directory, staging_directory
from ..specs import build, to_spec
from .adapter import MaskedLMAdapter
from .checks import model_config, quiet_transformers, require_complete, require_safetensors
from .configuration import MODEL_TYPE, DiscreteDiffConfig
from .modeling import DiscreteDiffForMaskedLM

MODEL_INPUTS = ["input_ids", "attention_mask"]
"""What our tokenizer returns: the denoiser takes no token_type_ids."""


def to_transformers(model: TrainedModel) -> DiscreteDiffForMaskedLM:
    """The trained denoiser wrapped in a PreTrainedModel carrying every setting in its config."""
    network = model.network
    common = {
        "vocab_size": len(model.tokenizer),
        "mask_token_id": model.mask_id,
        "pad_token_id": model.tokenizer.pad_token_id,
        "objective": to_spec(model.objective),
        "data": model.data,
        "global_step": model.global_step,
    }
    if isinstance(network, MaskedLMAdapter):
        config = DiscreteDiffConfig(backbone=network.backbone.config, **common)
    elif isinstance(network, Transformer):
        config = DiscreteDiffConfig(network=asdict(network.config), **common)
    else:
        raise TypeError(f"cannot save a {type(network).__name__} denoiser")
    wrapped = DiscreteDiffForMaskedLM(config)
    wrapped.denoiser.load_state_dict(network.state_dict())
    return wrapped.eval()


def save_pretrained(model: TrainedModel, directory: str | Path, overwrite: bool = False) -> Path:
    """Write the model directory atomically; refuses to replace an existing one unless `overwrite`."""
    target = Path(directory).expanduser()
    if target.exists() and not (overwrite and target.is_dir()):
        raise UserInputError(f"{target}: already exists (choose a new directory, or overwrite it: --overwrite)")
    staging = staging_directory(target)
    try:
        with quiet_transformers():
            to_transformers(model).save_pretrained(staging)
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=model.tokenizer.backend_tokenizer,
            model_input_names=MODEL_INPUTS,
            **model.tokenizer.special_tokens_map,
        )
        tokenizer.save_pretrained(staging)
        publish_directory(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def from_pretrained(directory: str | Path) -> TrainedModel:
    """Load a directory written by `save_pretrained`: EMA weights in eval mode, tokenizer, objective, data."""
    directory, raw = model_config(directory)
    if raw["model_type"] != MODEL_TYPE:
        raise UserInputError(
            f"{directory}: a {raw['model_type']!r} model, not a discrete-diff one; to fine-tune it as a denoiser "
            f"select it in a training config (model.network: {{path: {directory}}})"
        )
    require_safetensors(directory)
    if not (directory / "tokenizer.json").is_file():
        raise UserInputError(f"{directory}: no tokenizer.json")
    try:
        config = AutoConfig.from_pretrained(directory)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(directory)
    except Exception as error:  # config fields or tokenizer JSON that transformers cannot read, in many ways
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UserInputError(f"{directory}: config.json or tokenizer.json unreadable ({reason})") from None
    if len(tokenizer) != config.vocab_size:
        raise UserInputError(
            f"{directory}: vocabulary does not match the model: tokenizer.json has {len(tokenizer)} tokens, "
            f"config.json vocab_size {config.vocab_size}"
        )
    if tokenizer.mask_token_id is None or tokenizer.mask_token_id != config.mask_token_id:
        raise UserInputError(
            f"{directory}: the tokenizer's mask token (id {tokenizer.mask_token_id}) is not the model's "
            f"(id {config.mask_token_id})"
        )
    try:
        with quiet_transformers():
            wrapped, info = AutoModelForMaskedLM.from_pretrained(
                directory,
                config=config,
                use_safetensors=True,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported as one line below, not as a table
            )
    except (RuntimeError, ValueError) as error:
        raise UserInputError(f"{directory}: weights do not fit config.json ({str(error).splitlines()[0]})") from None
    require_complete(directory, info, set(wrapped.state_dict()))
    return TrainedModel(
        network=wrapped.denoiser.eval(),
        tokenizer=tokenizer,
        objective=build(config.objective, Objective),
        data=config.data or {},
        global_step=config.global_step,
    )
