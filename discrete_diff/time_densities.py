"""Densities to draw training times from, with the importance weights that keep the NELBO estimate unbiased.

Drawing t from pi(t) instead of U(0, 1) and multiplying each draw's term by 1 / pi(t) leaves the expectation equal
to the integral over [0, 1]: E_pi[ f(t) / pi(t) ] = integral of f(t) dt. Only the variance changes, so a density
can put more draws where the loss is informative without changing what is optimised. Stratified draws carry over
through the inverse CDF: t = F^{-1}(u) with u stratified. The densities here are piecewise constant (exact inverse
CDF, bounded weights): a density that vanished anywhere would make the weights unbounded there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from .errors import InvalidArgument


class TimeDensity(ABC):
    """A density pi(t) on [0, 1]: times are drawn as quantile(u), and each draw's term is divided by density(t).

    Subclasses keep only their constructor's arguments as attributes (checkpoints rebuild them from those).
    """

    @abstractmethod
    def pieces(self) -> tuple[list[float], list[float]]:
        """(edges from 0 to 1, the probability mass of each interval): the density is constant on each."""

    def _tables(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        edges, masses = self.pieces()
        edges = torch.tensor(edges, dtype=torch.float64, device=like.device)  # (K + 1,)
        masses = torch.tensor(masses, dtype=torch.float64, device=like.device)  # (K,)
        cumulative = torch.cat((masses.new_zeros(1), masses.cumsum(0)))  # (K + 1,)
        return edges, masses, cumulative

    def quantile(self, u: Tensor) -> Tensor:
        """F^{-1}(u) for u in [0, 1): the time whose cumulative probability is u."""
        edges, masses, cumulative = self._tables(u)
        piece = (torch.searchsorted(cumulative, u.double(), right=True) - 1).clamp(0, len(masses) - 1)
        within = (u.double() - cumulative[piece]) / masses[piece]
        return (edges[piece] + within * (edges[piece + 1] - edges[piece])).to(u.dtype)

    def density(self, t: Tensor) -> Tensor:
        """pi(t), the importance weight's denominator."""
        edges, masses, _ = self._tables(t)
        piece = (torch.searchsorted(edges, t.double(), right=True) - 1).clamp(0, len(masses) - 1)
        return (masses[piece] / (edges[piece + 1] - edges[piece])).to(t.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class UniformTime(TimeDensity):
    """t ~ U(0, 1): the plain NELBO estimate (weights all 1)."""

    def pieces(self) -> tuple[list[float], list[float]]:
        return [0.0, 1.0], [1.0]


class PiecewiseTime(TimeDensity):
    """Density constant on each interval [edges[i], edges[i+1]) of [0, 1], holding probability masses[i]."""

    def __init__(self, edges: list[float], masses: list[float]) -> None:
        if len(edges) != len(masses) + 1 or edges[0] != 0.0 or edges[-1] != 1.0:
            raise InvalidArgument("edges", f"must run from 0 to 1 with one more entry than masses, got {edges}")
        if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise InvalidArgument("edges", f"must increase, got {edges}")
        if any(m <= 0 for m in masses) or abs(sum(masses) - 1.0) > 1e-9:
            raise InvalidArgument("masses", f"must be positive and sum to 1, got {masses}")
        self.edges, self.masses = list(edges), list(masses)

    def pieces(self) -> tuple[list[float], list[float]]:
        return self.edges, self.masses


class WindowTime(TimeDensity):
    """A share `1 - floor` of the draws on [low, high], the rest spread over [0, 1] so no time is left out.

    BD3-LM's clipped schedules draw masking rates only from such a window (biased); the floor keeps every time
    reachable, so the importance-weighted estimate stays an unbiased NELBO.
    """

    def __init__(self, low: float = 0.2, high: float = 0.8, floor: float = 0.2) -> None:
        if not 0.0 <= low < high <= 1.0:
            raise InvalidArgument("low", f"and high must satisfy 0 <= low < high <= 1, got {low}, {high}")
        if not 0.0 < floor <= 1.0:
            raise InvalidArgument("floor", f"must be in (0, 1], got {floor}")
        self.low, self.high, self.floor = low, high, floor

    def pieces(self) -> tuple[list[float], list[float]]:
        bounds = [0.0, self.low, self.high, 1.0]
        pieces = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
        masses = [self.floor * (b - a) + (1.0 - self.floor) * (a == self.low) for a, b in pieces]
        return [a for a, _ in pieces] + [1.0], masses
