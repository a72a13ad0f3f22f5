"""The exact denoiser of uniform-state diffusion on the enumerable toy: x_theta at a position is the conditional of
x0 there given the *other* positions of x_t at the call's time (every one of them noisy), by enumeration."""

from __future__ import annotations

import torch
from toy import ToyDistribution, log_probs_as_logits

from discrete_diff.denoiser import DenoiserInput, select_scored
from discrete_diff.schedules import NoiseSchedule


def noisy_likelihood(toy: ToyDistribution, xt: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """q(x_t^j | x0^j) for every sequence x0 of the support: (B, N, L) float64, xt (B, L), alpha (B,)."""
    same = (toy.sequences[None] == xt[:, None]).double()  # (B, N, L)
    a = alpha.double()[:, None, None]
    return a * same + (1 - a) / toy.vocab


class ExactUniformDenoiser(torch.nn.Module):
    """Logits over V + 1 tokens ([MASK], the last, never predicted) of pi(x0^i | x_t^{-i}, t); time-conditioned."""

    time_conditioned = True

    def __init__(self, toy: ToyDistribution, schedule: NoiseSchedule, mix_uniform: float = 0.0) -> None:
        super().__init__()
        self.toy, self.schedule, self.mix_uniform = toy, schedule, mix_uniform
        self.vocab_size = toy.vocab + 1

    def forward(self, inputs: DenoiserInput) -> torch.Tensor:
        t = inputs.t.double()
        if bool((t == t[0]).all()):  # a sampler's call: one time, many equal rows; enumerate each distinct row once
            rows, inverse = inputs.ids.unique(dim=0, return_inverse=True)
            probs = self.conditionals(rows, t[:1].expand(len(rows)))[inverse]  # (B, L, V)
        else:
            probs = self.conditionals(inputs.ids, t)
        probs = (1 - self.mix_uniform) * probs + self.mix_uniform / self.toy.vocab
        return select_scored(log_probs_as_logits(probs), inputs)

    def conditionals(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(B, L) ids at times t (B,) -> (B, L, V): each position's x0 given the other positions."""
        likelihood = noisy_likelihood(self.toy, xt, self.schedule.alpha(t))  # (B, N, L)
        out = []
        for i in range(self.toy.length):
            others = torch.cat((likelihood[..., :i], likelihood[..., i + 1 :]), dim=-1).prod(-1)  # (B, N)
            weights = others * self.toy.probs[None]  # (B, N)
            joint = torch.einsum("bn,nv->bv", weights, self.toy.one_hot[:, i])  # (B, V)
            out.append(joint / joint.sum(-1, keepdim=True))
        return torch.stack(out, dim=1)  # (B, L, V)
