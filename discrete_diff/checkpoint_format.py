"""What a discrete-diff checkpoint and model directory hold, by format version.

Lightning checkpoints keep, next to the weights, one plain-data entry (`CHECKPOINT_KEY`) with everything needed
to rebuild the model without unpickling anything: tokenizer JSON, domain, network shape, objective spec, data
description. Exported directories keep the same fields in config.json.

Versions: 1 (no version field): interleaved rotary channels, the EMA under "ema.module.", no domain.
2: half-split rotary channels, the EMA (Lightning's weight averaging) under "network.", the domain by name.
3: the text data module's training window recorded as `max_length` (was `block_length`), as the protein one's.
"""

from __future__ import annotations

CHECKPOINT_KEY = "discrete_diff"
"""The checkpoint entry holding, as plain data, everything needed to rebuild the model without pickles."""

FORMAT_VERSION = 3
"""The version this library writes; older ones are converted on load (inference/formats.py)."""

WEIGHTS_PREFIX = "network."
"""Prefix of the (averaged) denoiser weights in a checkpoint's state_dict."""
