"""Load a trained model from a Lightning checkpoint safely: `weights_only=True`, classes from an allowlist."""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerFast

from .errors import UserInputError
from .lit import CHECKPOINT_KEY
from .models.transformer import Transformer, TransformerConfig
from .objectives import Objective
from .specs import build
from .tokenizer_io import tokenizer_from_dict


@dataclass
class TrainedModel:
    """Everything inference needs: the EMA network (in eval mode), its tokenizer and objective."""

    network: nn.Module
    tokenizer: PreTrainedTokenizerFast
    objective: Objective
    data: dict[str, Any] = field(default_factory=dict)
    global_step: int = 0

    @property
    def mask_id(self) -> int:
        return self.tokenizer.mask_token_id


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only=True, turning every failure into a one-line user error."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing them anyway
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserInputError(
            f"{path}: not a checkpoint, or one holding pickled objects (never loaded: only tensors and plain data "
            "are read; save the weights as a state dict of tensors or as safetensors)"
        ) from None
    except Exception:  # arbitrary bytes fail in arbitrary ways inside the unpickler
        raise UserInputError(f"{path}: not a checkpoint (torch.load could not read it)") from None
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint:
        raise UserInputError(f"{path}: not a discrete-diff checkpoint (no '{CHECKPOINT_KEY}' entry)")
    return checkpoint


def load_trained_model(path: str | Path) -> TrainedModel:
    """The EMA weights of a checkpoint (or a model directory from `discrete-diff export`), ready for inference."""
    if Path(path).expanduser().is_dir():
        from .hf.directory import from_pretrained

        return from_pretrained(path)
    checkpoint = read_checkpoint(path)
    meta = checkpoint[CHECKPOINT_KEY]
    tokenizer = tokenizer_from_dict(meta["tokenizer"])
    network = build_network(meta["network"], vocab_size=len(tokenizer))
    prefix = "ema.module."
    weights = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    try:
        network.load_state_dict(weights)
    except RuntimeError as error:
        raise UserInputError(
            f"{path}: weights do not match the stored network ({str(error).splitlines()[0]})"
        ) from None
    network.eval()
    return TrainedModel(
        network=network,
        tokenizer=tokenizer,
        objective=build(meta["objective"], Objective),
        data=meta.get("data", {}),
        global_step=int(checkpoint.get("global_step", 0)),
    )


def build_network(description: dict[str, Any], vocab_size: int) -> nn.Module:
    """A randomly initialised network of the recorded shape: our Transformer, or a transformers masked LM."""
    if "masked_lm" in description:
        from .hf.adapter import MaskedLMAdapter

        return MaskedLMAdapter.from_description(description, vocab_size)
    return Transformer(TransformerConfig(**description), vocab_size=vocab_size)
