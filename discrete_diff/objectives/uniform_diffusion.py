"""The continuous-time NELBO of uniform-state diffusion (UDLM): every position is scored at every time."""

from __future__ import annotations

import torch
from torch import Tensor

from ..batch import Batch
from ..denoiser import Bidirectional, Denoiser, DenoiserInput
from ..noising import Uniform
from ..process import sample_times
from ..schedules import LogLinearSchedule, NoiseSchedule
from .base import Decoding, DrawnBound, Loss, Objective


class UniformDiffusion(DrawnBound, Objective):
    """Resample each token uniformly at a random time, predict x0 at every position, score UDLM's NELBO.

    Training draws t in [t_min, 1] (antithetic across the batch). The bound (`bound_at`, validation and `eval`)
    integrates t over all of [0, 1] and adds KL(q(x_1 | x0) || uniform) when alpha(1) > 0, so it bounds -log p of
    the sampler that starts from uniform noise. Its time is drawn as t = u^2 with weight 2u: a draw at small t
    that resampled a token costs ~ log(1/t) / t with probability ~ t, whose variance is infinite under t ~ U(0, 1)
    and finite under t = u^2. The network should be time-conditioned: the best x_theta depends on the noise level.
    """

    kind = "a uniform-state diffusion model"
    decoding = Decoding.WINDOW
    two_sided_infill = True
    guidance_applies = True
    sampler_steps_apply = True

    def __init__(self, schedule: NoiseSchedule | None = None, antithetic: bool = True, t_min: float = 1e-3) -> None:
        """t_min: smallest training time (the rare small-t draws carry the largest per-draw values)."""
        self.schedule = schedule or LogLinearSchedule()
        self.antithetic = antithetic
        self.t_min = t_min

    def noising(self, mask_id: int, vocab_size: int) -> Uniform:
        return Uniform(mask_id, vocab_size)

    def integrand(self, network: Denoiser, batch: Batch, xt: Tensor, t: Tensor, process: Uniform) -> Tensor:
        """(B,) the NELBO's time integrand at x_t (B, L) and t (B,): the summed per-position terms."""
        scored = batch.maskable  # (B, L)
        inputs = DenoiserInput(xt, Bidirectional(batch.attention_mask), t=t.float(), class_labels=batch.class_labels,
                               score_at=scored)  # fmt: skip
        log_probs = process.log_probs(network(inputs))  # (N, V) at the scored positions
        times = t[:, None].expand_as(scored)[scored]  # (N,)
        terms = process.token_nelbo(log_probs, batch.input_ids[scored], xt[scored], times, self.schedule)  # (N,)
        per_position = torch.zeros(scored.shape, dtype=terms.dtype, device=terms.device).masked_scatter(scored, terms)
        return per_position.sum(-1)  # (B,)

    def prior_term(self, batch: Batch, process: Uniform) -> Tensor:
        """(B,) KL(q(x_1 | x0) || uniform) of each sequence: 0 for a schedule with alpha(1) = 0."""
        return batch.maskable.sum(-1).double() * process.prior_divergence(self.schedule)

    def loss_at(
        self, network: Denoiser, batch: Batch, t: Tensor, mask_id: int, generator: torch.Generator | None = None
    ) -> Loss:
        """One draw of the NELBO at times t (B,) (the time integral's draw at t, plus the prior term)."""
        process = self.noising(mask_id, network.vocab_size)
        xt, _ = process.corrupt(batch.input_ids, t, self.schedule, maskable=batch.maskable, generator=generator)
        per_sequence = self.integrand(network, batch, xt, t, process) * (1.0 - self.t_min)
        return Loss.per_token(per_sequence + self.prior_term(batch, process), batch.maskable.sum(-1))

    def loss(
        self,
        network: Denoiser,
        batch: Batch,
        mask_id: int,
        generator: torch.Generator | None = None,
        progress: float = 1.0,
    ) -> Loss:
        t = sample_times(batch.size, t_min=self.t_min, antithetic=self.antithetic, generator=generator,
                         device=batch.input_ids.device)  # fmt: skip
        return self.loss_at(network, batch, t, mask_id, generator)

    def bound_of_states(self, network: Denoiser, batch: Batch, xt: Tensor, u: Tensor, mask_id: int) -> Tensor:
        """(B,) the bound's draw for given noisy tokens xt (B, L) at u (B,) (exact tests enumerate the states)."""
        process = self.noising(mask_id, network.vocab_size)
        u = u.double()
        integral = 2.0 * u * self.integrand(network, batch, xt, u**2, process)  # t = u^2, dt = 2u du
        return integral + self.prior_term(batch, process)

    def bound_at(
        self, network: Denoiser, batch: Batch, u: Tensor, mask_id: int, generator: torch.Generator | None = None
    ) -> Loss:
        """One draw of the likelihood bound per sequence at u (B,) in [0, 1): time t = u^2 over all of [0, 1]."""
        process = self.noising(mask_id, network.vocab_size)
        t = u.double() ** 2
        xt, _ = process.corrupt(batch.input_ids, t, self.schedule, maskable=batch.maskable, generator=generator)
        per_sequence = self.bound_of_states(network, batch, xt, u, mask_id)
        return Loss.per_token(per_sequence, batch.maskable.sum(-1))
