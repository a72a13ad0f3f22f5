"""A trained model, ready for inference: the network in eval mode, its domain, objective and training facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn
from transformers import PreTrainedTokenizerFast

from ..domain import Domain
from ..objectives import Objective
from ..sampling import SamplingSettings


@dataclass
class TrainedModel:
    """Everything inference needs: the (averaged) network in eval mode, its domain (tokenizer inside), objective."""

    network: nn.Module
    domain: Domain
    objective: Objective
    data: dict[str, Any] = field(default_factory=dict)
    """What the training data module recorded (its spec, the length distribution, tokens per unit); a distilled
    model also records `sampling_steps` and how it was distilled."""
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

    @property
    def sampling_steps(self) -> int | None:
        """The step count the model was distilled for (None: not distilled)."""
        return self.data.get("sampling_steps")

    def default_settings(self) -> SamplingSettings:
        """The library's sampling defaults, with the distilled step count where the model records one."""
        steps = self.sampling_steps
        return SamplingSettings() if steps is None else SamplingSettings(steps=int(steps))
