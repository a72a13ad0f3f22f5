"""The `transformers` config of a discrete-diff model directory: the denoiser's shape plus the diffusion settings."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

MODEL_TYPE = "discrete_diff"


class DiscreteDiffConfig(PretrainedConfig):
    """Exactly one of `network` (our Transformer) or `backbone` (a transformers masked LM's config) is set.

    Everything else is plain data that `discrete_diff` rebuilds safely: the objective as a spec (its noise
    schedule inside), the training data's description (e.g. a protein length distribution) and the step count.
    """

    model_type = MODEL_TYPE
    sub_configs_defaults = {"backbone": SubConfigSpec(config_class=AutoConfig, model_type="bert", optional=True)}

    network: dict[str, Any] | None = None
    """TransformerConfig fields of our own denoiser."""
    backbone: dict | PretrainedConfig | None = None
    """The config of a fine-tuned transformers masked LM (its model_type must be built into transformers)."""
    vocab_size: int = 0
    """Tokens the denoiser predicts: the tokenizer's length (a backbone's embedding table may be larger)."""
    mask_token_id: int = 0
    """[MASK]: the absorbing state of a masked-diffusion model; where a uniform-state model's layouts draw noise."""
    objective: dict[str, Any] | None = None
    """discrete_diff.specs spec of the Objective, noise schedule included; it names the noising process (e.g.
    UniformDiffusion: uniform-state), which sampling a loaded model follows."""
    data: dict[str, Any] | None = None
    """What the training data module recorded (data module spec, length distribution, ...); a distilled model's
    `sampling_steps`, the default step count of its samplers."""
    global_step: int = 0
    """Optimizer steps the weights were trained for."""
    domain: dict[str, Any] | None = None
    """The kind of sequence ({"name": "text"} or {"name": "protein"}): tokenizer roles, framing, unit."""
    format_version: int = 1
    """discrete_diff.checkpoint_format.FORMAT_VERSION of what was written (1 = before versions existed)."""
