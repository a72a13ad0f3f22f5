"""discrete-diff models as `transformers` citizens: a config, a PreTrainedModel, export, Auto registration.

`register()` (run by `import discrete_diff`) makes AutoConfig and AutoModelForMaskedLM load our directories with
no trust_remote_code. Loading a model for sampling does not need this package: see `discrete_diff.inference`.
"""

from __future__ import annotations

from functools import cache

from transformers import AutoConfig, AutoModelForMaskedLM

from .configuration import MODEL_TYPE, DiscreteDiffConfig
from .modeling import DiscreteDiffForMaskedLM


@cache
def register() -> None:
    """Tell the transformers Auto classes about model_type "discrete_diff" (idempotent)."""
    AutoConfig.register(MODEL_TYPE, DiscreteDiffConfig, exist_ok=True)
    AutoModelForMaskedLM.register(DiscreteDiffConfig, DiscreteDiffForMaskedLM, exist_ok=True)


__all__ = ["DiscreteDiffConfig", "DiscreteDiffForMaskedLM", "register"]
