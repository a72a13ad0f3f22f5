"""Classifier-free guidance: steer each reveal toward a label (or a prompt) and away from the unconditional model.

One network is both conditional and unconditional (label dropout in training feeds it the null label). Per
position the guided distribution mixes the two normalised predictions,

    log p_w(x) = (1 + w) log p(x | x_t, c) - w log p(x | x_t, null) - log Z,

renormalised over x (Schiff et al. 2024). It is computed as the same mix of the two passes' logits, normalised once
(guided_logits): SUBS then puts [MASK] at -inf in the mix. Mixing normalised per-token distributions, not
unnormalised transition rates, leaves how many tokens a step reveals to the strategy: the rate mix would unmask
faster than the schedule (Rojas et al. 2025). w = 0 is plain conditional sampling. The two predictions come from
one network call on 2B rows, or from two calls of B rows where a CPU runs those faster (SPLIT_FROM_ROWS). The scale
may follow a schedule over time, weak early (t near 1, when little is known and a strong push collapses diversity)
and strong late.

What the unconditional pass sees: the null label instead of the asked-for one, and, for infilling, the prompt's
given tokens masked (prompt guidance, as in LLaDA), so a fill is steered toward what the prompt implies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..denoiser import Bidirectional, DenoiserInput
from ..errors import InvalidArgument

SPLIT_FROM_ROWS = 16
"""Guided calls of at least this many rows per pass run the passes as two calls of B rows, below it as one call of 2B
rows: the batch size from which two calls are faster, as `benchmarks/guidance.py --parts cost` measured it (2-core
CPU, fp32; the labelled configs' shapes, proteins at width 64 and text at width 256; batch sizes 1, 4, 16, 64: one
call faster up to 4 rows, two calls from 16). Both ways give the same logits: rows never interact."""
GUIDANCE_SCHEDULES = ("constant", "linear", "cosine", "late")
"""How the scale grows as t goes from 1 to 0: constant w; linear w (1 - t); cosine w (1 - cos(pi (1 - t))) / 2; late:
0 until t = 1/2, w from there on (guidance in the later half of the run only, the limited interval of Kynkaanniemi
et al. 2024). Where w(t) is 0 for every row a network skips the unconditional pass (Guidance.needs_unconditional):
late guidance costs about 1.5 calls per step, not 2."""


def schedule_factor(schedule: str, time: Tensor) -> Tensor:
    """The share of the guidance scale applied at diffusion time t (B,): 1 for constant, 0 -> 1 for the others."""
    progress = 1.0 - time.double()  # (B,) 0 at the start, 1 at the end
    if schedule == "constant":
        return torch.ones_like(progress)
    if schedule == "linear":
        return progress
    if schedule == "cosine":
        return (1.0 - torch.cos(math.pi * progress)) / 2.0
    if schedule == "late":
        return (progress >= 0.5).double()
    raise InvalidArgument("guidance_schedule", f"{schedule!r} is unknown; choose from {', '.join(GUIDANCE_SCHEDULES)}")


def guided_logits(conditional: Tensor, unconditional: Tensor, weight: Tensor) -> Tensor:
    """The guided mix of the two passes' logits, c + w (c - u) = (1 + w) c - w u: (B, L, V), `weight` (B,).

    Normalised (SUBS: [MASK] at -inf, then log-softmax) it is the module docstring's mix of normalised predictions:
    the log-partition terms of both passes are constant over x at each position and cancel in the renormalisation,
    so one log-softmax of B rows does the work of three (2B rows, then B). A row at w = 0 gets the conditional
    logits unrounded: exactly what unguided sampling normalises. Denoisers that already return log-probabilities
    with -inf (an exact toy's zeros) are mixed as the formula says for them: a token impossible under the
    conditional stays impossible, and one that only the unconditional rules out keeps its conditional value
    instead of becoming +inf.
    """
    w = weight.to(conditional.dtype)[:, None, None]  # (B, 1, 1)
    mixed = conditional + w * (conditional - unconditional)  # (B, L, V)
    if torch.isfinite(mixed).all():
        return mixed
    unconditional = torch.where(torch.isneginf(unconditional), conditional, unconditional)
    impossible = torch.isneginf(conditional)  # (B, L, V)
    finite = torch.where(impossible, 0.0, conditional)  # no -inf arithmetic
    mixed = finite + w * (finite - torch.where(impossible, 0.0, unconditional))
    return torch.where(impossible, -math.inf, mixed)


@dataclass(frozen=True)
class Guidance:
    """How to steer a sampling run: the scale and its schedule, and what the unconditional pass sees."""

    scale: float
    """w: 0 is conditional sampling; larger pushes harder toward the label (or prompt)."""
    schedule: str = "constant"
    """One of GUIDANCE_SCHEDULES: how w grows as t goes from 1 to 0 (the scale is its value at t = 0)."""
    labels: Tensor | None = None
    """(B,) label ids of the unconditional pass (the null label); None: the same labels as the conditional pass."""
    hidden: Tensor | None = None
    """(B, L) bool: positions the unconditional pass sees as [MASK] (a prompt's given tokens); None: none."""
    split_from: int = SPLIT_FROM_ROWS
    """Rows per pass from which a network runs the passes as two calls instead of one call of 2B rows."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale >= 0):
            raise InvalidArgument("guidance_scale", f"must be a finite number >= 0, got {self.scale}")
        schedule_factor(self.schedule, torch.zeros(1))  # an unknown schedule fails here, not mid-run
        if self.labels is None and self.hidden is None:
            raise InvalidArgument(
                "guidance_scale", "needs something to steer toward: a label, or a prompt's given tokens"
            )

    @property
    def varies(self) -> bool:
        """Whether the weight changes over time (a reused network output must then be mixed again each step)."""
        return self.schedule != "constant"

    def weight(self, time: Tensor) -> Tensor:
        """w(t) per row: (B,) float64."""
        return self.scale * schedule_factor(self.schedule, time)

    def needs_unconditional(self, denoiser: Callable[[DenoiserInput], Tensor], time: Tensor) -> bool:
        """Whether a call at time (B,) must run the unconditional pass: not where w(t) is 0 for every row (the mix is
        then the conditional itself), unless the denoiser is a wrapper holding a cache of 2B rows (block diffusion's,
        the prefix and dKV caches), which every call must feed as it was filled."""
        return not isinstance(denoiser, torch.nn.Module) or bool((self.weight(time) > 0).any())

    def unconditional(self, inputs: DenoiserInput, mask_id: int) -> DenoiserInput:
        """What the unconditional pass sees (B rows): the null label, and the `hidden` positions masked."""
        if not isinstance(inputs.attention, Bidirectional):
            raise ValueError(f"guidance pairs bidirectional inputs, not {type(inputs.attention).__name__}")
        ids = inputs.ids if self.hidden is None else inputs.ids.masked_fill(self.hidden, mask_id)  # (B, L)
        labels = inputs.class_labels if self.labels is None else self.labels
        if (labels is None) != (inputs.class_labels is None):
            raise ValueError("the unconditional pass of a labelled model needs labels too (the null label)")
        return DenoiserInput(ids, inputs.attention, t=inputs.t, class_labels=labels)

    def paired(self, inputs: DenoiserInput, mask_id: int) -> DenoiserInput:
        """The conditional rows (B) followed by the unconditional ones (B): one network call for both passes."""
        other = self.unconditional(inputs, mask_id)
        padding = inputs.attention.padding
        return DenoiserInput(
            torch.cat((inputs.ids, other.ids)),  # (2B, L)
            Bidirectional(None if padding is None else torch.cat((padding, padding))),
            t=None if inputs.t is None else torch.cat((inputs.t, inputs.t)),
            class_labels=None if other.class_labels is None else torch.cat((inputs.class_labels, other.class_labels)),
        )

    def predict(self, denoiser: Callable[[DenoiserInput], Tensor], inputs: DenoiserInput, mask_id: int) -> Tensor:
        """Logits of the conditional rows then the unconditional ones, (2B, L, V): one call on the paired rows, or,
        from `split_from` rows on, one call per pass. Only a network (an nn.Module, which keeps nothing between
        calls) is split; a wrapper such as block diffusion's cached denoiser holds a cache of 2B rows: one call."""
        if inputs.batch_size < self.split_from or not isinstance(denoiser, torch.nn.Module):
            return denoiser(self.paired(inputs, mask_id))
        return torch.cat((denoiser(inputs), denoiser(self.unconditional(inputs, mask_id))))  # (2B, L, V)

    def combine(self, logits: Tensor, time: Tensor) -> Tensor:
        """Logits of the paired rows (2B, L, V) -> the guided logits (B, L, V) at time (B,), for the noising
        process to normalise as it does unguided ones (guided_logits)."""
        conditional, unconditional = logits.chunk(2)
        return guided_logits(conditional, unconditional, self.weight(time))
