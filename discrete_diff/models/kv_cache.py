"""Keys and values of positions already run through a transformer, so later calls only run the new positions.

The transformer's own attention reads and extends it (`Transformer.forward(inputs, cache=...)`): the
autoregressive baseline decodes one token per call, block diffusion keeps its clean blocks here.
"""

from __future__ import annotations

import torch
from torch import Tensor


class KVCache:
    """Per-layer keys and values (B, H, C, D) of the C cached positions, their padding, and the next position."""

    def __init__(self, layers: int) -> None:
        self.keys: list[Tensor | None] = [None] * layers
        self.values: list[Tensor | None] = [None] * layers
        self.padding: Tensor | None = None
        """(B, C) bool, True at real cached tokens; None = all real."""
        self.next_position = 0
        """Absolute position of the next token to be added (rotary positions keep growing past a trim)."""

    @property
    def size(self) -> int:
        """Number of cached positions C."""
        first = self.keys[0]
        return 0 if first is None else first.shape[2]

    def read(self, layer: int) -> tuple[Tensor | None, Tensor | None]:
        return self.keys[layer], self.values[layer]

    def write(self, layer: int, keys: Tensor, values: Tensor) -> None:
        """Store the layer's keys and values (B, H, C', D) for every position cached after this call."""
        self.keys[layer], self.values[layer] = keys, values

    def extend_padding(self, new: Tensor | None, batch_size: int, added: int, device: torch.device) -> None:
        """Record the padding (B, T) of `added` new positions (None = all real)."""
        if self.padding is None and new is None:
            return
        old = self.padding
        if old is None:
            old = torch.ones(batch_size, self.size - added, dtype=torch.bool, device=device)
        if new is None:
            new = torch.ones(batch_size, added, dtype=torch.bool, device=device)
        self.padding = torch.cat((old, new.bool()), dim=1)  # (B, C)

    def trim(self, keep: int) -> None:
        """Keep only the last `keep` cached positions (a sliding window for sequences longer than training)."""
        if keep < 0:
            raise ValueError(f"keep must be non-negative, got {keep}")
        start = max(self.size - keep, 0)
        self.keys = [None if k is None else k[:, :, start:] for k in self.keys]  # (B, H, keep, D) each
        self.values = [None if v is None else v[:, :, start:] for v in self.values]
        if self.padding is not None:
            self.padding = self.padding[:, start:]

    def drop_last(self, count: int) -> None:
        """Forget the last `count` cached positions and their positions (a block cached along with a draft)."""
        if not 0 <= count <= self.size:
            raise ValueError(f"cannot drop {count} of {self.size} cached positions")
        keep = self.size - count
        self.keys = [None if k is None else k[:, :, :keep] for k in self.keys]  # (B, H, keep, D) each
        self.values = [None if v is None else v[:, :, :keep] for v in self.values]
        if self.padding is not None:
            self.padding = self.padding[:, :keep]
        self.next_position -= count
