"""Uniform-state diffusion (UDLM, Schiff et al. 2025): a token is resampled uniformly with probability 1 - alpha(t).

The states are every id of the vocabulary but [MASK] (N = V - 1 of them): q(x_t | x0) = alpha x0 + (1 - alpha) / N,
uniform at t = 1 when alpha(1) = 0. The reverse step plugs the denoiser's x_theta (a distribution over x0) into the
posterior q(x_s | x_t, x0), and the continuous-time NELBO is UDLM's (their eq. 18, Lou et al.'s score entropy with
the mean parameterisation), per position with z = x_t and the bars x_bar = N alpha x + (1 - alpha):

    -alpha' / (N alpha) * [ N / x_bar_theta(z) - N / x_bar(z) + sum_y r_y log(r_y / s_y) ],
    r_y = x_bar(y) / x_bar(z) for the one-hot x0,  s_y = x_bar_theta(y) / x_bar_theta(z).

It is tight when x_theta is the conditional of x0 at a position given the *other* positions of x_t (the true ratios
p_t(x_t with y at i) / p_t(x_t) are then exactly s_y), which is what minimising it teaches.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..schedules import NoiseSchedule
from .base import NoisingProcess


class Uniform(NoisingProcess):
    """Every position stays undecided until the end: a reverse step may change any of them."""

    revises = True

    def __init__(self, blank_id: int, vocab_size: int) -> None:
        if not 0 <= blank_id < vocab_size or vocab_size < 3:
            raise ValueError(f"need a [MASK] id inside a vocabulary of at least 3, got {blank_id} of {vocab_size}")
        super().__init__(blank_id)
        self.vocab_size = vocab_size
        self.states = vocab_size - 1
        """N: every id but [MASK]."""

    def state_mask(self, device: torch.device) -> Tensor:
        """(V,) bool: True at the ids noise can draw (all but [MASK])."""
        return torch.arange(self.vocab_size, device=device) != self.blank_id

    def uniform_ids(self, shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """Ids drawn uniformly from the N states, shape `shape`."""
        drawn = torch.randint(0, self.states, shape, generator=generator, device=device)
        return drawn + (drawn >= self.blank_id).long()  # skip the [MASK] id

    def corrupt(
        self, x0: Tensor, t: Tensor, schedule: NoiseSchedule, *, maskable: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """Each maskable position resampled uniformly with probability 1 - alpha(t); every maskable one is scored."""
        u = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=torch.float64)  # (B, L)
        resampled = (u < schedule.mask_probability(t.double())[:, None]) & maskable
        noise = self.uniform_ids(x0.shape, generator, x0.device)  # (B, L)
        return torch.where(resampled, noise, x0), maskable

    def prior(self, tokens: Tensor, blanks: Tensor, generator: torch.Generator) -> Tensor:
        """Blanks drawn uniformly from the states."""
        return torch.where(blanks, self.uniform_ids(tokens.shape, generator, tokens.device), tokens)

    def undecided(self, tokens: Tensor, editable: Tensor) -> Tensor:
        return editable

    def posterior(self, log_probs: Tensor, tokens: Tensor, alpha_t: float | Tensor, alpha_s: float | Tensor) -> Tensor:
        """log q(x_s | x_t, x0 = x_theta) (..., V) float64 for tokens x_t (...) and log x_theta (..., V), alpha_t and
        alpha_s numbers or float64 tensors (..., 1) (a time per row): proportional to
        [alpha_t|s 1{x_s = x_t} + (1 - alpha_t|s) / N] * [alpha_s x_theta(x_s) + (1 - alpha_s) / N]."""
        n = self.states
        states = self.state_mask(tokens.device)  # (V,)
        ratio = alpha_t / alpha_s
        stay = torch.nn.functional.one_hot(tokens, log_probs.shape[-1]).double()  # (..., V)
        to_t = ratio * stay + (1.0 - ratio) / n  # (..., V)
        from_s = alpha_s * log_probs.double().exp() + (1.0 - alpha_s) / n  # (..., V)
        product = torch.where(states, to_t * from_s, 1.0)  # 1 at [MASK]: log(0) there would make gradients nan
        return torch.where(states, product.log(), -math.inf)

    def reverse_step(
        self, tokens: Tensor, log_probs: Tensor, active: Tensor, times: tuple[float, float], schedule: NoiseSchedule
    ) -> tuple[Tensor, Tensor]:
        """Every active position drawn from the posterior; at s = 0 that is x_theta reweighted by q(x_t | x0)."""
        alpha_t, alpha_s = (float(schedule.alpha(torch.tensor(time, dtype=torch.float64))) for time in times)
        return active, self.posterior(log_probs, tokens, alpha_t, alpha_s)

    def token_nelbo(self, log_probs: Tensor, x0: Tensor, xt: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
        """The NELBO integrand at time t of each scored position (N,) float64: log_probs (N, V) the denoiser's
        log x_theta there, x0 and xt (N,) the clean and noisy ids, t (N,) their times."""
        t = t.double()
        alpha, noise = schedule.alpha(t), schedule.mask_probability(t)  # (N,) each; noise = 1 - alpha, precisely
        n, states = self.states, self.state_mask(x0.device)
        scale = (n * alpha)[:, None]  # (N, 1)
        bar_theta = scale * log_probs.double().exp() + noise[:, None]  # (N, V)
        bar = noise[:, None].expand_as(bar_theta).scatter_add(-1, x0[:, None], scale)  # (N, V): x0 one-hot
        at_z = xt[:, None]
        r = bar / bar.gather(-1, at_z)  # (N, V)
        s = bar_theta / bar_theta.gather(-1, at_z)  # (N, V)
        divergence = torch.where(states, torch.xlogy(r, r) - torch.xlogy(r, s), 0.0).sum(-1)  # (N,)
        bracket = n / bar_theta.gather(-1, at_z)[:, 0] - n / bar.gather(-1, at_z)[:, 0] + divergence
        weight = torch.where(alpha > 0, -schedule.alpha_prime(t) / (n * alpha.where(alpha > 0, 1.0)), 0.0)
        return weight * bracket  # alpha = 0 (t = 1 of a schedule ending uniform): the limit, 0

    def prior_divergence(self, schedule: NoiseSchedule) -> float:
        """KL(q(x_1 | x0) || uniform) per position in nats: 0 when alpha(1) = 0 (the bound's term at t = 1)."""
        alpha = float(schedule.alpha(torch.tensor(1.0, dtype=torch.float64)))
        n, noise = self.states, 1.0 - alpha
        clean = alpha + noise / n
        other = noise / n
        return clean * math.log(clean * n) + (n - 1) * (other * math.log(other * n) if other > 0 else 0.0)
