"""The trained denoiser as a `transformers` PreTrainedModel, so AutoModelForMaskedLM can load our directories."""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import AutoModelForMaskedLM, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import MaskedLMOutput

from ..denoiser import Bidirectional, DenoiserInput
from ..models.pretrained import MaskedLMAdapter
from ..models.transformer import Rotary, TimeEmbedding, Transformer, TransformerConfig
from ..objectives import Objective
from ..specs import build
from .configuration import DiscreteDiffConfig

IGNORE_INDEX = -100
"""Label value that the masked-LM loss skips (transformers' convention)."""


class DiscreteDiffForMaskedLM(PreTrainedModel):
    """Logits of p(x0 | x_t) before SUBS (the caller sets the [MASK] logit to -inf and copies unmasked tokens).

    `denoiser` is the engine's network, called through `DenoiserInput`; samplers and objectives use it directly.
    A uniform-state model (its objective's noising process `revises`) never saw [MASK]: `forward` refuses inputs
    holding it, so the masked-LM conventions (fill-mask) cannot query it for what it does not know.
    """

    config_class = DiscreteDiffConfig
    main_input_name = "input_ids"

    def __init__(self, config: DiscreteDiffConfig) -> None:
        super().__init__(config)
        if (config.network is None) == (config.backbone is None):
            raise ValueError("a discrete_diff config sets exactly one of `network` and `backbone`")
        if config.network is not None:
            self.denoiser = Transformer(TransformerConfig(**config.network), vocab_size=config.vocab_size)
        else:
            self.denoiser = MaskedLMAdapter(AutoModelForMaskedLM.from_config(config.backbone), config.vocab_size)
        self.revises = (
            bool(config.objective)
            and build(config.objective, Objective).noising(config.mask_token_id, config.vocab_size).revises
        )
        self.post_init()
        if isinstance(self.denoiser, MaskedLMAdapter):  # post_init only looks one module deep for tied weights
            tied = self.denoiser.backbone.all_tied_weights_keys
            self.all_tied_weights_keys.update(
                {f"denoiser.backbone.{k}": f"denoiser.backbone.{v}" for k, v in tied.items()}
            )

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Transformers' defaults match our Transformer's init; tables it cannot know about are rebuilt here."""
        super()._init_weights(module)
        if isinstance(module, Rotary):  # non-persistent, so never in the weights file
            fresh = Rotary(module.head_dim, module.cos.shape[0], module.base)
            init.copy_(module.cos, fresh.cos)
            init.copy_(module.sin, fresh.sin)
        elif isinstance(module, TimeEmbedding):
            init.copy_(module.freqs, TimeEmbedding(2 * module.freqs.shape[0]).freqs)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        t: Tensor | None = None,
        class_labels: Tensor | None = None,
        return_dict: bool | None = None,
    ) -> MaskedLMOutput:
        """input_ids: (B, L); attention_mask: (B, L), nonzero at real tokens; labels: (B, L) target ids, -100 where
        not scored (the masked-LM loss `Trainer` and fine-tuning loops expect); t: (B,) for time-conditioned
        models; class_labels: (B,) for label-conditioned ones."""
        if self.revises and bool((input_ids == self.config.mask_token_id).any()):
            raise ValueError(
                "a uniform-state diffusion model never sees [MASK]: masked-LM queries (fill-mask) do not apply to it; "
                "sample or infill it with discrete_diff (DiffusionPipeline.from_pretrained)"
            )
        padding = None if attention_mask is None else attention_mask.bool()
        inputs = DenoiserInput(input_ids, Bidirectional(padding), t=t, class_labels=class_labels)
        logits = self.denoiser(inputs)  # (B, L, V)
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
            )
        return MaskedLMOutput(loss=loss, logits=logits)
