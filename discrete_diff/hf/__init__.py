"""discrete-diff models as `transformers` citizens: model directories, Auto classes, pretrained masked LMs.

`register()` (run by `import discrete_diff`) makes AutoConfig, AutoModelForMaskedLM and AutoTokenizer load our
directories with no trust_remote_code. The pipeline and export live in submodules, imported on use.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def register() -> None:
    """Tell the transformers Auto classes about model_type "discrete_diff" (idempotent)."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    from .configuration import MODEL_TYPE, DiscreteDiffConfig
    from .modeling import DiscreteDiffForMaskedLM

    AutoConfig.register(MODEL_TYPE, DiscreteDiffConfig, exist_ok=True)
    AutoModelForMaskedLM.register(DiscreteDiffConfig, DiscreteDiffForMaskedLM, exist_ok=True)


def __getattr__(name: str) -> Any:
    """`from discrete_diff.hf import DiffusionPipeline` without importing the pipeline's dependencies eagerly."""
    if name == "DiffusionPipeline":
        from .pipeline import DiffusionPipeline

        return DiffusionPipeline
    raise AttributeError(name)
