"""Converting what older library versions wrote into the current format, once, on load."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from ..checkpoint_format import FORMAT_VERSION
from ..errors import UserInputError

log = logging.getLogger(__name__)

DATA_MODULE_DOMAINS = {"TextDataModule": "text", "ProteinDataModule": "protein"}
"""Version 1 recorded no domain, but always the data module it trained on: its class names the domain."""


def upgrade(meta: dict[str, Any], weights: dict[str, Tensor], source: str) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Metadata and denoiser weights (prefix-free) in the current format; older versions are converted exactly."""
    version = meta.get("format_version", 1)
    if version == FORMAT_VERSION:
        return meta, weights
    if not isinstance(version, int) or not 1 <= version < FORMAT_VERSION:
        raise UserInputError(f"{source}: format version {version} is newer than this library's {FORMAT_VERSION}")
    log.warning("%s: format version %d, converted on load (re-export or retrain to skip it)", source, version)
    if version == 1:
        meta, weights = _from_version_1(meta, weights, source)
    meta = dict(meta, format_version=FORMAT_VERSION, data=_data_keys_renamed(meta.get("data", {})))
    return meta, weights


def _from_version_1(meta: dict[str, Any], weights: dict[str, Tensor], source: str):
    meta = dict(meta, domain={"name": _domain_of(meta, source)})
    network = dict(meta["network"])
    if "masked_lm" not in network:
        network.pop("causal", None)  # attention is chosen per call now, by the objective
        weights = interleaved_to_half_split(weights, network["d_model"] // network["n_heads"], network["n_layers"])
    meta["network"] = network
    meta["data"] = _window_recorded(meta.get("data", {}))
    return meta, weights


def _data_keys_renamed(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 names the text data module's window `max_length`, as the protein one does; 1 and 2 `block_length`
    (evaluation rebuilds the data module from these arguments)."""
    spec = data.get("datamodule")
    if not isinstance(spec, dict) or "block_length" not in spec.get("init_args", {}):
        return data
    init = {("max_length" if key == "block_length" else key): value for key, value in spec["init_args"].items()}
    return dict(data, datamodule=dict(spec, init_args=init))


def _window_recorded(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 records the training window and lengths itself; version 1 kept them in the data module's args."""
    init = data.get("datamodule", {}).get("init_args", {})
    window = init.get("max_length") or init.get("block_length")
    data = dict(data)
    if window:
        data.setdefault("max_length", window)
        if "block_length" in init:  # text blocks all have the training length
            data.setdefault("lengths", {"length": [window], "count": [1]})
    return data


def _domain_of(meta: dict[str, Any], source: str) -> str:
    path = meta.get("data", {}).get("datamodule", {}).get("class_path", "")
    name = DATA_MODULE_DOMAINS.get(path.rpartition(".")[2])
    if name is None:
        raise UserInputError(
            f"{source}: a version-1 model that records no text or protein data module: its domain is unknown"
        )
    return name


def interleaved_to_half_split(weights: dict[str, Tensor], head_dim: int, layers: int) -> dict[str, Tensor]:
    """Reorder each head's query and key channels from rotary pairs (2j, 2j+1) to (j, j + D/2).

    Attention scores q . k are unchanged by any permutation applied to both q and k, so the converted network
    computes exactly what the old one did.
    """
    order = torch.cat((torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)))  # (D,)
    converted = dict(weights)
    for layer in range(layers):
        key = f"blocks.{layer}.attn.qkv.weight"
        qkv = weights[key]  # (3 * H * D, d_model): rows are (three, head, channel)
        heads = qkv.shape[0] // (3 * head_dim)
        rows = qkv.reshape(3, heads, head_dim, -1).clone()  # (3, H, D, d_model)
        rows[:2] = rows[:2, :, order]  # queries and keys only; values carry no rotary
        converted[key] = rows.reshape(qkv.shape)
    return converted
