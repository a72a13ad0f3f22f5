"""What an objective is: a loss over a batch, the validation number `eval` reports for its kind of model, and what
its models can do (how they decode, which sampler options and infilling apply)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from enum import Enum
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor

from ..batch import Batch
from ..denoiser import Denoiser
from ..noising import Absorbing, NoisingProcess
from ..process import stratified_uniforms
from .bound import LikelihoodBound
from .estimate import estimate_likelihood


class Loss(NamedTuple):
    """A batch's loss and what the likelihood bound needs from it."""

    value: Tensor
    """Scalar: the quantity training minimises (nats per scored token for the NELBO and the AR NLL)."""
    per_sequence: Tensor
    """(B,) nats of each sequence (a one-draw NELBO estimate, or the exact NLL)."""
    scored_tokens: Tensor
    """(B,) tokens each sequence is scored on."""

    @classmethod
    def per_token(cls, per_sequence: Tensor, scored_tokens: Tensor) -> Loss:
        """The loss whose value is nats per scored token over the batch."""
        return cls(per_sequence.sum() / scored_tokens.sum().clamp_min(1), per_sequence, scored_tokens)


class Decoding(Enum):
    """How a model generates; `generation.py` keeps one routine per member. The value says how, for messages."""

    WINDOW = "a whole window of [MASK] at once, in steps"
    LEFT_TO_RIGHT = "left to right, one token per call"
    BLOCKS = "block by block, left to right, each block in steps"


class Objective(ABC):
    """A loss over a batch, the likelihood it reports, and what its models can do; the Lightning module, `eval` and
    inference hold one of these, and nothing else knows its maths.

    Code outside `objectives/` never asks which objective it holds: it reads the capabilities below, plain data
    each subclass sets. Objectives import no generation or sampling code (the layering), so they say *what*
    applies and the callers choose *how*: `generation.py` maps `decoding` to its routine in a table, infilling
    reads `two_sided_infill`, the commands read the flags to refuse what does not apply. A new objective sets
    these and, if it decodes in a new way, adds a `Decoding` member and its routine to that table.

    The likelihood is one loop for every objective (`estimate.estimate_likelihood`): a subclass supplies one draw
    of its per-sequence nats (`likelihood_draw`), the uniforms each draw takes (`likelihood_strata`) and whether
    the quantity is exact (`exact_likelihood`).
    """

    kind: ClassVar[str]
    """How messages name a model of this objective, e.g. "a masked-diffusion model"."""
    decoding: ClassVar[Decoding]
    """Which generation routine samples its models."""
    two_sided_infill: ClassVar[bool] = False
    """Blanks may sit anywhere between given tokens (else a prompt can at most be continued)."""
    continues_past_window: ClassVar[bool] = False
    """Samples may be longer than the training window."""
    guidance_applies: ClassVar[bool] = False
    """Classifier-free guidance can steer its sampler."""
    sampler_steps_apply: ClassVar[bool] = False
    """The sampler's strategy, step count and remasking apply (else only the logit filters do)."""
    noise_window_applies: ClassVar[bool] = False
    """A clipped noise window for its training can be chosen by the variance of its loss (`noise_window.py`)."""
    needs_causal_attention: ClassVar[bool] = False
    """Its network attends causally (across positions or blocks): a bidirectional pretrained masked LM cannot."""
    order_bound_applies: ClassVar[bool] = False
    """Its sampler reveals one token at a time in a random order, so the bound importance-weighted over unmasking
    orders (`order_bound`) bounds it (given a time-independent network)."""

    def noising(self, mask_id: int, vocab_size: int) -> NoisingProcess:
        """How its models' tokens are noised, over a vocabulary of `vocab_size` with this [MASK] id: absorbing
        (masking) unless a subclass says otherwise. The sampling loop and the layouts ask it, not the [MASK] id."""
        return Absorbing(mask_id)

    @abstractmethod
    def loss(
        self,
        network: Denoiser,
        batch: Batch,
        mask_id: int,
        generator: torch.Generator | None = None,
        progress: float = 1.0,
    ) -> Loss:
        """The training loss of one batch; `progress` in [0, 1] is the share of the training budget spent (for
        levers that change over training)."""

    def validation_loss(
        self, network: Denoiser, batch: Batch, mask_id: int, generator: torch.Generator | None = None
    ) -> Loss:
        """What validation logs per sequence: the same number `likelihood` averages (the training loss by default)."""
        return self.loss(network, batch, mask_id, generator)

    def likelihood(
        self,
        network: Denoiser,
        batches: Iterable[Batch],
        mask_id: int,
        *,
        time_draws: int = 8,
        seed: int = 0,
        max_batches: int | None = None,
    ) -> LikelihoodBound:
        """The validation number for this kind of model (a NELBO bound, or an exact NLL), in nats per token: the
        average of `time_draws` draws per sequence (one if exact) with its standard error."""

        def draw(batch: Batch, u: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
            return self.likelihood_draw(network, batch, u, mask_id, generator)

        return estimate_likelihood(
            draw, batches, time_draws=time_draws, seed=seed, max_batches=max_batches,
            strata=self.likelihood_strata, exact=self.exact_likelihood,
        )  # fmt: skip

    @abstractmethod
    def likelihood_draw(
        self, network: Denoiser, batch: Batch, u: Tensor, mask_id: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """One draw at uniforms u (B, *likelihood_strata(batch)) in [0, 1): (B,) nats per sequence, unbiased for its
        bound (or its exact NLL), and (B,) scored tokens."""

    def likelihood_strata(self, batch: Batch) -> tuple[int, ...]:
        """The shape of the uniforms one draw takes per sequence, each stratified across the draws: () for one."""
        return ()

    @property
    def exact_likelihood(self) -> bool:
        """The likelihood has no randomness (an exact NLL): one draw, reported without an error."""
        return False


class DrawnBound:
    """`validation_loss` and `likelihood_draw` of an objective whose `bound_at(network, batch, u, mask_id,
    generator)` is its likelihood bound at draws u (B,) in [0, 1) (masked and uniform-state diffusion)."""

    def validation_loss(
        self, network: Denoiser, batch: Batch, mask_id: int, generator: torch.Generator | None = None
    ) -> Loss:
        """One draw of the likelihood bound per sequence, stratified across the batch."""
        offset = torch.rand((), generator=generator, dtype=torch.float64, device=batch.input_ids.device)
        return self.bound_at(network, batch, stratified_uniforms(offset, batch.size), mask_id, generator)

    def likelihood_draw(
        self, network: Denoiser, batch: Batch, u: Tensor, mask_id: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """The bound at u (B,) for each sequence, and its scored tokens."""
        loss = self.bound_at(network, batch, u, mask_id, generator)
        return loss.per_sequence, loss.scored_tokens
