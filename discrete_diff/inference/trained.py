"""A trained model, ready for inference: the network in eval mode, its domain, objective and training facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerFast

from ..domain import Domain
from ..errors import InvalidArgument
from ..labels import LABELS_KEY, LabelVocabulary
from ..noising import NoisingProcess
from ..objectives import Objective
from ..sampling import Guidance, SamplingSettings


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
    def process(self) -> NoisingProcess:
        """How the model's tokens are noised (absorbing, uniform): what its sampler starts from and steps through."""
        return self.objective.noising(self.mask_id, len(self.tokenizer))

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

    @property
    def labels(self) -> LabelVocabulary | None:
        """The label names the model was trained with; None for a model trained without labels."""
        names = self.data.get(LABELS_KEY)
        return LabelVocabulary(tuple(names)) if names else None

    def class_labels(self, label: str | None, count: int) -> Tensor | None:
        """(count,) ids of `label`, or of the null label when None; None for a model trained without labels (which
        refuses a label). An unknown name is an error that lists the known ones."""
        vocabulary = self.labels
        if vocabulary is None:
            if label is not None:
                raise InvalidArgument("label", f"{label!r} given, but this model was trained without labels")
            return None
        index = vocabulary.null_id if label is None else vocabulary.id_of(label)
        return torch.full((count,), index, dtype=torch.long)

    def guidance(
        self, settings: SamplingSettings, class_labels: Tensor | None, hidden: Tensor | None = None
    ) -> Guidance | None:
        """Classifier-free guidance as `settings` ask (None at scale 0): the unconditional pass sees the null label
        and, when given, the `hidden` (B, L) positions (a prompt's given tokens) masked."""
        if not settings.guidance_scale:
            return None
        if self.process.revises:
            hidden = None  # a uniform-state model never saw [MASK]: its unconditional pass cannot hide a prompt
        vocabulary = self.labels
        null = None if vocabulary is None or class_labels is None else torch.full_like(class_labels, vocabulary.null_id)
        steers_label = null is not None and bool((class_labels != null).any())
        if not steers_label and (hidden is None or not bool(hidden.any())):
            if vocabulary is not None:
                toward = f"a label to steer toward (known labels: {', '.join(vocabulary.names)})"
            elif self.process.revises:
                toward = "a label to steer toward: a uniform-state model is steered by labels only"
            else:  # an unlabelled model is steered toward a prompt only
                toward = "a prompt's given tokens to steer toward: this model was trained without labels"
            raise InvalidArgument("guidance_scale", f"needs {toward}")
        hidden = hidden if hidden is not None and bool(hidden.any()) else None
        return Guidance(settings.guidance_scale, settings.guidance_schedule, labels=null, hidden=hidden)
