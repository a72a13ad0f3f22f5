"""A TrainedModel from plain metadata and weights, whichever file they came from."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..domain_registry import build_domain
from ..errors import UserInputError
from ..models import build_network
from ..models.pretrained import MaskedLMAdapter
from ..objectives import Objective
from ..specs import build
from ..tokenizer_io import tokenizer_from_dict
from .formats import upgrade
from .trained import TrainedModel


def assemble(
    meta: dict[str, Any], weights: dict[str, Tensor], source: str, *, global_step: int, tokenizer=None
) -> TrainedModel:
    """Rebuild network, domain and objective from `meta` (any format version) and load `weights` into the network.

    `tokenizer` overrides the one in `meta` (a model directory keeps it in tokenizer.json).
    """
    meta, weights = upgrade(meta, weights, source)
    tokenizer = tokenizer or tokenizer_from_dict(meta["tokenizer"])
    network = build_network(meta["network"], vocab_size=len(tokenizer))
    load_weights(network, weights, source)
    network.eval()
    return TrainedModel(
        network=network,
        domain=build_domain(meta["domain"], tokenizer),
        objective=build(meta["objective"], Objective),
        data=meta.get("data", {}),
        global_step=global_step,
    )


def load_weights(network, weights: dict[str, Tensor], source: str) -> None:
    """Load exactly the network's weights; a backbone's tied copies (left out when saved) are tied again."""
    try:
        result = network.load_state_dict(weights, strict=False)
    except RuntimeError as error:  # a tensor of the wrong shape
        raise UserInputError(
            f"{source}: weights do not match the stored network ({str(error).splitlines()[1].strip()})"
        ) from None
    missing = set(result.missing_keys)
    if isinstance(network, MaskedLMAdapter):
        network.backbone.tie_weights()
        missing -= {f"backbone.{key}" for key in network.backbone.all_tied_weights_keys}
    if missing or result.unexpected_keys:
        what = f"missing {sorted(missing)[0]}" if missing else f"unexpected {sorted(result.unexpected_keys)[0]}"
        raise UserInputError(f"{source}: weights do not match the stored network ({what})")
