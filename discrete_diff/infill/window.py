"""The one window a template is seen in, by the length rule that scores it and by the sampler that fills it.

A template that ends with framing (a protein's <eos>) is a whole sequence: its row is exactly the sequence, and
rows of different lengths are padded (padding is not attended, as in training). A template without framing
(text) is a stretch of a longer text: its window is as long as the template with every blank at its longest,
and the positions after the template are [MASK], the unknown text that follows. Every candidate length is then
scored in that same window, and the chosen one is filled in it too (the sampler also draws the positions after
the template, which are dropped), so what the length rule compared is what the sampler samples from.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..templates import TokenTemplate


def window_row(template: TokenTemplate, lengths: Sequence[int], mask_id: int) -> tuple[Tensor, Tensor]:
    """Token ids (W,) with [MASK] in the blanks and after a framing-less template, and the given positions (W,)."""
    ids, given = template.layout(lengths, mask_id)
    extra = 0 if template.tail else template.longest() - len(ids)
    ids = torch.cat((ids, torch.full((extra,), mask_id, dtype=torch.long)))
    return ids, torch.cat((given, torch.zeros(extra, dtype=torch.bool)))


def stack_rows(rows: Sequence[tuple[Tensor, Tensor]], pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """Rows of `window_row` padded to one width: ids (B, W), given (B, W), attended (B, W) (False at padding)."""
    width = max(len(ids) for ids, _ in rows)
    tokens = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, W)
    given = torch.zeros(len(rows), width, dtype=torch.bool)  # (B, W)
    attended = torch.zeros(len(rows), width, dtype=torch.bool)  # (B, W)
    for row, (ids, row_given) in enumerate(rows):
        tokens[row, : len(ids)], given[row, : len(ids)], attended[row, : len(ids)] = ids, row_given, True
    return tokens, given, attended
