"""The continuous-time NELBO of absorbing-state diffusion with the SUBS parameterization."""

from __future__ import annotations

import torch
from torch import Tensor

from ..batch import Batch
from ..denoiser import AttentionPattern, Bidirectional, Denoiser, DenoiserInput
from ..errors import InvalidArgument
from ..noising import Absorbing
from ..process import (
    NelboStats,
    count_weighted_nelbo,
    draw_masked_count,
    importance_weights,
    masked_token_nll,
    nelbo,
    sample_times,
)
from ..schedules import LogLinearSchedule, NoiseSchedule
from ..time_densities import TimeDensity
from .base import Decoding, DrawnBound, Loss, Objective
from .levers import annealed_attention, normalize, repeat_batch


class MaskedDiffusion(DrawnBound, Objective):
    """Mask each sequence at a random time, predict the masked tokens, weight by the schedule (MDLM).

    Training may reweight the masking levels: any positive weighting over t has the same optimal denoiser
    (the true conditionals), so the training loss need not be the NELBO itself. `train_weighting`:
    - "elbo": the NELBO, w(t) * sum of masked cross-entropies; a sequence drawn at small t has a handful of
      masked tokens times a weight ~1/t, so its gradient is noisy and, under clipping, can swamp the batch;
    - "clipped": the NELBO with w(t) capped at `weight_cap` (GIDD's clipped weights): small-t draws count less;
    - "sequence": each sequence contributes the mean cross-entropy of its masked tokens: the NELBO's equal
      weight per masking level with the random count of masked tokens replaced by its expectation;
    - "flat": every masked token in the batch counts the same (MaskGIT / BERT style), favouring high t.
    The other training levers: `time_density` (draw t from a density, each draw weighted by 1 / pi(t) so the
    NELBO estimate stays unbiased), `maskings_per_sequence` (k independently masked copies of each sequence,
    stratified times across all of them), `normalization` (the weighted NELBO sum divided by the scored tokens,
    averaged per sequence, or divided by the constant B x L) and `attention_anneal` (start from causal attention,
    e.g. after an autoregressive warm start, and open the future keys at random until this share of training).
    Validation and `eval` always report the NELBO over the full range of times.
    """

    kind = "a masked-diffusion model"
    decoding = Decoding.WINDOW
    two_sided_infill = True
    guidance_applies = True
    sampler_steps_apply = True
    order_bound_applies = True

    WEIGHTINGS = ("elbo", "clipped", "sequence", "flat")
    NORMALIZATIONS = ("tokens", "sequences", "batch")

    def __init__(
        self,
        schedule: NoiseSchedule | None = None,
        antithetic: bool = True,
        t_min: float = 1e-3,
        train_weighting: str = "elbo",
        weight_cap: float = 10.0,
        time_density: TimeDensity | None = None,
        maskings_per_sequence: int = 1,
        normalization: str = "tokens",
        attention_anneal: float = 0.0,
    ) -> None:
        """t_min: smallest training time; [0, t_min] holds about t_min of the bound but the largest 1/t weights."""
        if train_weighting not in self.WEIGHTINGS:
            raise InvalidArgument("train_weighting", f"must be one of {self.WEIGHTINGS}, got {train_weighting!r}")
        if normalization not in self.NORMALIZATIONS:
            raise InvalidArgument("normalization", f"must be one of {self.NORMALIZATIONS}, got {normalization!r}")
        if maskings_per_sequence < 1:
            raise InvalidArgument("maskings_per_sequence", f"must be at least 1, got {maskings_per_sequence}")
        if weight_cap <= 0 or not 0.0 <= attention_anneal < 1.0:
            raise InvalidArgument("weight_cap", "must be positive and attention_anneal in [0, 1)")
        self.schedule = schedule or LogLinearSchedule()
        self.antithetic = antithetic
        self.t_min = t_min
        self.train_weighting = train_weighting
        self.weight_cap = weight_cap
        self.time_density = time_density
        self.maskings_per_sequence = maskings_per_sequence
        self.normalization = normalization
        self.attention_anneal = attention_anneal

    def stats_at(
        self,
        network: Denoiser,
        batch: Batch,
        t: Tensor,
        mask_id: int,
        generator: torch.Generator | None = None,
        attention: AttentionPattern | None = None,
    ) -> NelboStats:
        """Mask at times t (B,), denoise, and score the masked positions (the network computes nothing else)."""
        x0, maskable = batch.input_ids, batch.maskable
        xt, masked = Absorbing(mask_id).corrupt(x0, t, self.schedule, maskable=maskable, generator=generator)
        attention = attention or Bidirectional(batch.attention_mask)
        inputs = DenoiserInput(xt, attention, t=t, class_labels=batch.class_labels, score_at=masked)
        token_nll = masked_token_nll(network(inputs), x0, masked, mask_id)  # (B, L)
        return nelbo(token_nll, masked, t, self.schedule, maskable)

    def loss_at(
        self, network: Denoiser, batch: Batch, t: Tensor, mask_id: int, generator: torch.Generator | None = None
    ) -> Loss:
        """The NELBO estimate at given times t (B,); evaluation uses it with stratified draws."""
        stats = self.stats_at(network, batch, t, mask_id, generator)
        return Loss(stats.loss, stats.per_sequence, stats.scored_tokens)

    def loss(
        self,
        network: Denoiser,
        batch: Batch,
        mask_id: int,
        generator: torch.Generator | None = None,
        progress: float = 1.0,
    ) -> Loss:
        copies = self.maskings_per_sequence
        repeated = repeat_batch(batch, copies)  # (k B, L): k maskings of every sequence
        x0 = repeated.input_ids
        t = sample_times(
            x0.shape[0], t_min=self.t_min, antithetic=self.antithetic, density=self.time_density,
            generator=generator, device=x0.device,
        )  # fmt: skip
        importance = importance_weights(t, self.t_min, self.time_density)  # (k B,)
        attention = annealed_attention(repeated, progress / self.attention_anneal if self.attention_anneal else 1.0)
        stats = self.stats_at(network, repeated, t, mask_id, generator, attention)
        summed = stats.masked_sums  # (k B,)
        weights = {
            "elbo": self.schedule.weight(t) * importance,
            "clipped": self.schedule.weight(t).clamp_max(self.weight_cap) * importance,
        }
        if self.train_weighting in weights:
            value = normalize(weights[self.train_weighting] * summed, stats.scored_tokens, self.normalization)
        else:
            value = stats.sequence_cross_entropy if self.train_weighting == "sequence" else stats.masked_cross_entropy
        per_sequence = (stats.per_sequence * importance).view(copies, -1).mean(0)  # (B,) unbiased NELBO terms
        return Loss(value, per_sequence, batch.maskable.sum(-1))

    def bound_at(
        self, network: Denoiser, batch: Batch, u: Tensor, mask_id: int, generator: torch.Generator | None = None
    ) -> Loss:
        """One draw of the likelihood bound per sequence, u (B,) in [0, 1) choosing how many tokens are masked.

        Averaged over u ~ U(0, 1) this is the NELBO with masking levels integrated over all of [0, 1], whatever
        the schedule: an upper bound on -log p_theta(x0) for the sampler that starts from all-[MASK] (a schedule
        with alpha(1) = eps > 0 leaves (1 - eps, 1] out of its time integral; this does not). The level is
        integrated out by masking m of the n scored tokens, m uniform on 1..n, with weight n / m
        (`count_weighted_nelbo`): no level near 0 carries a huge weight, so no cut-off is needed and every draw is
        finite. A time-conditioned network is called at t = time_at(1 - level), clamped to [0, 1], with the level
        drawn from its law given m (`draw_masked_count`).
        """
        masked, level = draw_masked_count(batch.maskable, u, generator)
        return self.bound_of_masks(network, batch, masked, level, mask_id)

    def bound_of_masks(self, network: Denoiser, batch: Batch, masked: Tensor, level: Tensor, mask_id: int) -> Loss:
        """The bound's draw for given masked positions (B, L) standing for masking levels (B,) (exact tests
        enumerate these)."""
        x0 = batch.input_ids
        xt = x0.masked_fill(masked, mask_id)  # (B, L)
        t = self.schedule.time_at(1.0 - level.double()).clamp(0.0, 1.0).float()  # (B,)
        inputs = DenoiserInput(xt, Bidirectional(batch.attention_mask), t=t, class_labels=batch.class_labels,
                               score_at=masked)  # fmt: skip
        token_nll = masked_token_nll(network(inputs), x0, masked, mask_id)  # (B, L)
        per_sequence = count_weighted_nelbo(token_nll, masked, batch.maskable)  # (B,)
        scored = batch.maskable.sum(dim=-1)  # (B,)
        return Loss.per_token(per_sequence, scored)
