"""A trained model, ready for inference: the network in eval mode, its domain, objective and training facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn
from transformers import PreTrainedTokenizerFast

from ..domain import Domain
from ..objectives import Objective


@dataclass
class TrainedModel:
    """Everything inference needs: the (averaged) network in eval mode, its domain (tokenizer inside), objective."""

    network: nn.Module
    domain: Domain
    objective: Objective
    data: dict[str, Any] = field(default_factory=dict)
    """What the training data module recorded (its spec, the length distribution, tokens per unit)."""
    global_step: int = 0

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        return self.domain.tokenizer

    @property
    def mask_id(self) -> int:
        return self.tokenizer.mask_token_id

    @property
    def max_length(self) -> int:
        """Most tokens one row may hold: the training window if recorded, else the network's positions."""
        window = self.data.get("max_length")
        return min(window or self.network.config.max_length, self.network.config.max_length)

    @property
    def length_limit(self) -> int:
        """Most positions one sample may have: `max_length` less the domain's framing tokens."""
        head, tail = self.domain.framing()
        return self.max_length - len(head) - len(tail)
