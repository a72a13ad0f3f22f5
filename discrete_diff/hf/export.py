"""A trained model as a `transformers` directory: config.json, model.safetensors, tokenizer.json (+ config).

The directory is written to a staging folder beside the target and renamed into place, so a crash never leaves
half a model. `discrete_diff.inference.load_model` reads it back; `AutoModelForMaskedLM` does too, after
`import discrete_diff`. The weights are written under the modules' own names (transformers' own writer renames
some backbones' LayerNorm weights to legacy names), tied copies once.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file
from torch import Tensor
from transformers import PreTrainedTokenizerFast

from ..atomic_files import atomic_directory
from ..checkpoint_format import FORMAT_VERSION
from ..errors import UserInputError
from ..inference import TrainedModel
from ..model_files import quiet_transformers
from ..models import describe_network
from ..models.pretrained import MaskedLMAdapter
from ..specs import to_spec
from .configuration import DiscreteDiffConfig
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
        "domain": model.domain.describe(),
        "format_version": FORMAT_VERSION,
    }
    if isinstance(network, MaskedLMAdapter):
        config = DiscreteDiffConfig(backbone=network.backbone.config, **common)
    else:
        config = DiscreteDiffConfig(network=describe_network(network), **common)
    wrapped = DiscreteDiffForMaskedLM(config)
    wrapped.denoiser.load_state_dict(network.state_dict())
    return wrapped.eval()


def save_pretrained(model: TrainedModel, directory: str | Path, overwrite: bool = False) -> Path:
    """Write the model directory atomically; refuses to replace an existing one unless `overwrite`."""
    target = Path(directory).expanduser()
    if target.exists() and not (overwrite and target.is_dir()):
        raise UserInputError(f"{target}: already exists (choose a new directory, or overwrite it: --overwrite)")
    with atomic_directory(target) as staging:
        wrapped = to_transformers(model)
        with quiet_transformers():
            wrapped.config.save_pretrained(staging)
        save_file(weights_of(wrapped), staging / "model.safetensors", metadata={"format": "pt"})
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=model.tokenizer.backend_tokenizer,
            model_input_names=MODEL_INPUTS,
            **model.tokenizer.special_tokens_map,
        )
        tokenizer.save_pretrained(staging)
    return target


def weights_of(wrapped: DiscreteDiffForMaskedLM) -> dict[str, Tensor]:
    """The state dict without tied copies (loading ties them again), each tensor in its own memory."""
    tied = set(wrapped.all_tied_weights_keys)
    return {key: value.contiguous().clone() for key, value in wrapped.state_dict().items() if key not in tied}
