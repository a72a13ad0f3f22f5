"""A pretrained `transformers` masked LM (ESM-2, BERT, ModernBERT, ...) as the diffusion denoiser.

The objective turns its logits into p(x0 | x_t) with SUBS, so fine-tuning it with the NELBO needs nothing but the
engine's one network interface: forward(DenoiserInput) -> logits. The masked LM ignores t (with SUBS the optimal
denoiser is time-independent, which also keeps the sampler's caching valid), attends bidirectionally only, and
takes no class labels: inputs asking for more are refused with a clear error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from transformers import AutoConfig, AutoModelForMaskedLM, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from ..denoiser import Bidirectional, DenoiserInput, select_scored
from ..errors import UserInputError
from ..model_files import directory_tokenizer, model_config, quiet_transformers, require_complete, require_safetensors

log = logging.getLogger(__name__)

UNBOUNDED_LENGTH = 1 << 16
"""Length limit reported for a backbone whose config states none."""


@dataclass
class PretrainedMaskedLM:
    """Select a local transformers masked-LM directory as the denoiser (training = fine-tuning it)."""

    path: str
    """The model directory (config.json + model.safetensors), e.g. a downloaded ESM-2 or BERT."""
    add_tokens: bool = True
    """Grow the embeddings for tokens the tokenizer has beyond the model's vocabulary (e.g. an added mask token),
    with a warning; false refuses such a tokenizer instead."""


@dataclass
class AdapterConfig:
    """What the engine reads off a denoiser's `config`."""

    max_length: int
    time_conditioning: bool = False
    num_labels: int = 0


class MaskedLMAdapter(nn.Module):
    """Wraps a transformers masked LM: (B, L) ids -> (B, L, vocab_size) logits."""

    def __init__(self, backbone: PreTrainedModel, vocab_size: int) -> None:
        super().__init__()
        rows = backbone.get_input_embeddings().num_embeddings
        if vocab_size > rows:
            raise UserInputError(f"the tokenizer has {vocab_size} tokens but the model's embeddings only {rows}")
        self.backbone = backbone
        self.vocab_size = vocab_size
        self.config = AdapterConfig(max_length=getattr(backbone.config, "max_position_embeddings", UNBOUNDED_LENGTH))

    time_conditioned = False
    num_labels = 0

    def forward(self, inputs: DenoiserInput) -> Tensor:
        """Logits (B, L, vocab_size), or (N, vocab_size) at `inputs.score_at`."""
        if not isinstance(inputs.attention, Bidirectional):
            raise ValueError(
                f"a pretrained masked LM attends bidirectionally only, not {type(inputs.attention).__name__}"
            )
        if inputs.class_labels is not None:
            raise ValueError(
                "a pretrained masked LM takes no class labels (train a discrete-diff Transformer for that)"
            )
        padding = inputs.attention.padding
        # No mask at all lets the backbone take its unmasked (faster) attention path.
        attention_mask = None if padding is None or bool(padding.all()) else padding.long()
        logits = self.backbone(input_ids=inputs.ids, attention_mask=attention_mask).logits  # (B, L, V_model)
        # Rows past the tokenizer (the backbone's padding rows) are never predicted.
        return select_scored(logits[..., : self.vocab_size], inputs)

    def describe(self) -> dict[str, Any]:
        """Plain data for a checkpoint: enough to rebuild the backbone with no access to its directory."""
        return {"masked_lm": self.backbone.config.to_dict()}

    @classmethod
    def from_description(cls, description: dict[str, Any], vocab_size: int) -> MaskedLMAdapter:
        """Rebuild (random weights) from `describe()`; the caller loads the trained weights."""
        config = dict(description["masked_lm"])
        model_type = config.get("model_type")
        if "auto_map" in config or model_type not in CONFIG_MAPPING:
            raise UserInputError(f"refusing to build masked LM of type {model_type!r}: not built into transformers")
        backbone = AutoModelForMaskedLM.from_config(CONFIG_MAPPING[model_type].from_dict(config))
        return cls(backbone, vocab_size)


def load_masked_lm(path: str) -> PreTrainedModel:
    """A masked LM from a local directory: built-in model types only, safetensors only, no missing weights."""
    directory, raw = model_config(path)
    if raw.get("model_type") == "discrete_diff":
        raise UserInputError(f"{directory}: a trained discrete-diff model, not a pretrained masked LM to fine-tune")
    require_safetensors(directory)
    config = AutoConfig.from_pretrained(directory, trust_remote_code=False)
    if getattr(config, "token_dropout", False):
        # ESM-2 rescales embeddings by 1 / (1 - fraction masked), tuned to BERT's 15%: infinite at an all-mask start.
        log.warning("%s: turning ESM token_dropout off (diffusion masks anywhere from 0 to 100%%)", directory)
        config.token_dropout = False
    try:
        with quiet_transformers():
            model, info = AutoModelForMaskedLM.from_pretrained(
                directory,
                config=config,
                use_safetensors=True,
                trust_remote_code=False,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported below as one line, not as a table
            )
    except ValueError as error:  # transformers: no masked-LM class for this config
        raise UserInputError(f"{directory}: {raw['model_type']!r} has no masked-LM head ({error})") from None
    require_complete(directory, info, set(model.state_dict()))
    return model


def pretrained_denoiser(choice: PretrainedMaskedLM, tokenizer: PreTrainedTokenizerBase) -> MaskedLMAdapter:
    """Load the directory, check its vocabulary against `tokenizer`, and grow the embeddings if allowed."""
    backbone = load_masked_lm(choice.path)
    check_vocabulary(choice.path, tokenizer)
    rows = backbone.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        added = [tokenizer.convert_ids_to_tokens(i) for i in range(rows, len(tokenizer))]
        if not choice.add_tokens:
            raise UserInputError(
                f"{choice.path}: the tokenizer adds {added} beyond the model's {rows} tokens and add_tokens is false"
            )
        log.warning("%s: growing the embeddings from %d to %d rows for %s", choice.path, rows, len(tokenizer), added)
        backbone.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return MaskedLMAdapter(backbone.train(), vocab_size=len(tokenizer))  # from_pretrained hands it back in eval mode


def check_vocabulary(path: str, tokenizer: PreTrainedTokenizerBase) -> None:
    """Every ordinary token of the model's own tokenizer must keep its id, and the mask token too."""
    own = directory_tokenizer(path)
    if own is None:
        log.warning("%s: no tokenizer files; cannot check that the data's token ids match the model's", path)
        return
    special = set(own.all_special_tokens)
    ours = tokenizer.get_vocab()
    for token, index in own.get_vocab().items():
        if token not in special and ours.get(token) != index:
            raise UserInputError(
                f"{path}: vocabulary does not match the tokenizer in use: {token!r} is id {index} in the model, "
                f"{ours.get(token)} here (use the model's tokenizer)"
            )
    if own.mask_token_id is not None and own.mask_token_id != tokenizer.mask_token_id:
        raise UserInputError(
            f"{path}: the model's mask token is id {own.mask_token_id}, the tokenizer's {tokenizer.mask_token_id}"
        )
