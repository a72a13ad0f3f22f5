"""An exactly known data distribution over short sequences and its exact denoiser, by enumeration.

Tokens are 0..V-1 and [MASK] is V. With the exact conditionals p(x0^i | unmasked tokens) the NELBO of every
sequence equals -log p(x0), and the reverse process reproduces p: the tests built on this catch errors in
weights, signs, schedules and reverse steps.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from discrete_diff.batch import Batch
from discrete_diff.denoiser import BlockCausal, DenoiserInput, select_scored


class ToyDistribution:
    def __init__(self, vocab: int = 3, length: int = 3, seed: int = 0, concentration: float = 0.5) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.vocab, self.length, self.mask_id = vocab, length, vocab
        self.sequences = torch.tensor(list(itertools.product(range(vocab), repeat=length)))  # (N, L)
        gamma = torch.distributions.Gamma(torch.full((len(self.sequences),), concentration), torch.tensor(1.0))
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
        weights = gamma.sample().double()
        self.probs = weights / weights.sum()  # (N,)
        self.one_hot = torch.nn.functional.one_hot(self.sequences, vocab).double()  # (N, L, V)

    def log_prob(self, x0: Tensor) -> Tensor:
        """x0: (B, L) -> (B,) exact log p(x0)."""
        return torch.log(self.probs[self.index(x0)])

    def index(self, x: Tensor) -> Tensor:
        powers = self.vocab ** torch.arange(self.length - 1, -1, -1)
        return (x * powers).sum(-1)

    def conditionals(self, xt: Tensor) -> Tensor:
        """p(x0^i = v | unmasked tokens of xt), (B, L) -> (B, L, V)."""
        unmasked = xt != self.mask_id  # (B, L)
        agree = (self.sequences[None] == xt[:, None]) | ~unmasked[:, None]  # (B, N, L)
        weights = agree.all(-1).double() * self.probs[None]  # (B, N)
        joint = torch.einsum("bn,nlv->blv", weights, self.one_hot)  # (B, L, V)
        return joint / weights.sum(-1)[:, None, None]

    def entropy(self) -> float:
        p = self.probs[self.probs > 0]
        return float(-(p * p.log()).sum())

    def total_variation(self, samples: Tensor) -> float:
        counts = torch.bincount(self.index(samples), minlength=len(self.probs)).double()
        return 0.5 * float((counts / counts.sum() - self.probs).abs().sum())


class MarkovChain:
    """A stationary Markov chain over `vocab` tokens: long sequences (a 256-token block) whose exact conditionals
    given any unmasked tokens are known in closed form (only the nearest unmasked neighbours matter)."""

    def __init__(self, vocab: int = 4, length: int = 256, seed: int = 0, rare: float | None = None) -> None:
        """rare: if given, every transition but the most likely one from each token has this probability, so
        that the per-token losses are heavy-tailed (a few tokens cost -log(rare) nats)."""
        generator = torch.Generator().manual_seed(seed)
        self.vocab, self.length, self.mask_id = vocab, length, vocab
        if rare is None:
            weights = torch.rand(vocab, vocab, generator=generator, dtype=torch.float64) + 0.1
        else:
            weights = torch.full((vocab, vocab), rare, dtype=torch.float64)
            weights[torch.arange(vocab), torch.randperm(vocab, generator=generator)] = 1.0 - (vocab - 1) * rare
        self.transition = weights / weights.sum(-1, keepdim=True)  # (V, V)
        eigenvalues, eigenvectors = torch.linalg.eig(self.transition.T)
        stationary = eigenvectors[:, eigenvalues.real.argmax()].real
        self.stationary = stationary / stationary.sum()  # (V,)
        self.powers = torch.stack([torch.linalg.matrix_power(self.transition, d) for d in range(length + 1)])

    def sample(self, count: int, generator: torch.Generator) -> Tensor:
        x = torch.empty(count, self.length, dtype=torch.long)
        x[:, 0] = torch.multinomial(self.stationary.expand(count, -1), 1, generator=generator)[:, 0]
        for i in range(1, self.length):
            x[:, i] = torch.multinomial(self.transition[x[:, i - 1]], 1, generator=generator)[:, 0]
        return x

    def log_prob(self, x0: Tensor) -> Tensor:
        """x0: (B, L) -> (B,) exact log p(x0)."""
        steps = self.transition[x0[:, :-1], x0[:, 1:]].log().sum(-1)  # (B,)
        return self.stationary[x0[:, 0]].log() + steps

    def conditionals(self, xt: Tensor) -> Tensor:
        """p(x0^i = v | unmasked tokens of xt), (B, L) -> (B, L, V): the nearest unmasked token on each side."""
        batch, length = xt.shape
        positions = torch.arange(length).expand(batch, -1)  # (B, L)
        known = xt != self.mask_id
        left = torch.where(known, positions, -1).cummax(-1).values  # (B, L) last known at or before i
        right = torch.where(known, positions, length).flip(-1).cummin(-1).values.flip(-1)  # first known at or after
        value = xt.clamp_max(self.vocab - 1)
        left_value = value.gather(1, left.clamp_min(0))  # (B, L)
        right_value = value.gather(1, right.clamp_max(length - 1))
        from_left = self.powers[(positions - left).clamp_max(length), left_value]  # (B, L, V)
        from_left = torch.where((left < 0)[..., None], self.stationary, from_left)
        to_right = self.powers[(right - positions).clamp_max(length), :, right_value]  # (B, L, V)
        to_right = torch.where((right >= length)[..., None], torch.ones_like(to_right), to_right)
        joint = from_left * to_right
        return joint / joint.sum(-1, keepdim=True)


class ExactDenoiser(torch.nn.Module):
    """Logits over V + 1 tokens (the last is [MASK], never predicted); ignores t, like a SUBS denoiser."""

    time_conditioned = False

    def __init__(self, toy: ToyDistribution | MarkovChain, mix_uniform: float = 0.0) -> None:
        super().__init__()
        self.toy, self.mix_uniform = toy, mix_uniform
        self.calls = 0

    def forward(self, inputs: DenoiserInput) -> Tensor:
        self.calls += 1
        probs = self.toy.conditionals(inputs.ids)  # (B, L, V)
        probs = (1 - self.mix_uniform) * probs + self.mix_uniform / self.toy.vocab
        logits = torch.log(probs.clamp_min(1e-300))
        logits = torch.cat((logits, torch.full_like(logits[..., :1], -math.inf)), dim=-1).float()  # (B, L, V + 1)
        return select_scored(logits, inputs)


def toy_batch(x0: Tensor) -> Batch:
    ones = torch.ones_like(x0, dtype=torch.bool)
    return Batch(x0, ones, ones)


def log_probs_as_logits(probs: Tensor) -> Tensor:
    """(..., V) probabilities -> (..., V + 1) float32 logits, [MASK] (the last) at -inf."""
    logits = torch.log(probs.clamp_min(1e-300))
    return torch.cat((logits, torch.full_like(logits[..., :1], -math.inf)), dim=-1).float()


class ExactBlockDenoiser(torch.nn.Module):
    """The exact block-conditional p(x0^i | unmasked tokens of block b, clean blocks < b), blocks of the
    pattern's size, for the training input [x_t ; x_0] with a `BlockCausal` pattern, and for key-value-cached
    sampling: the cache holds the clean tokens (as its "keys", shape (B, 1, C, 1)) and must start at position 0;
    new positions see the cache and each other (the sampler's patterns only hide later blocks, which the exact
    conditionals do not read).
    """

    time_conditioned = False

    def __init__(self, toy: ToyDistribution, block_size: int, mix_uniform: float = 0.0) -> None:
        super().__init__()
        self.toy, self.block_size, self.mix_uniform = toy, block_size, mix_uniform
        self.blocks = [None]  # one "layer" of cache, like a one-layer transformer
        self.calls = 0

    def forward(self, inputs: DenoiserInput, cache=None, update_cache: bool = True) -> Tensor:
        self.calls += 1
        if cache is None:
            return select_scored(self._training(inputs), inputs)
        return self._cached(inputs, cache, update_cache)

    def _training(self, inputs: DenoiserInput) -> Tensor:
        assert isinstance(inputs.attention, BlockCausal) and inputs.attention.block_size == self.block_size
        length = inputs.ids.shape[1] // 2
        xt, x0 = inputs.ids[:, :length], inputs.ids[:, length:]
        block = torch.arange(length) // self.block_size  # (L,)
        probs = torch.full((*xt.shape, self.toy.vocab), 1.0 / self.toy.vocab, dtype=torch.float64)  # (B, L, V)
        for b in block.unique().tolist():
            visible = torch.where(block < b, x0, torch.where(block == b, xt, self.toy.mask_id))  # (B, L)
            probs[:, block == b] = self._mix(self.toy.conditionals(visible)[:, block == b])
        clean = torch.full_like(probs, 1.0 / self.toy.vocab)  # the clean half is never scored
        return log_probs_as_logits(torch.cat((probs, clean), dim=1))  # (B, 2L, V + 1)

    def _mix(self, probs: Tensor) -> Tensor:
        return (1 - self.mix_uniform) * probs + self.mix_uniform / self.toy.vocab

    def _cached(self, inputs: DenoiserInput, cache, update_cache: bool) -> Tensor:
        context = cache.keys[0]
        context = inputs.ids[:, :0] if context is None else context[:, 0, :, 0]  # (B, C)
        assert cache.next_position == context.shape[1], "the toy denoiser needs the whole prefix in its cache"
        width = inputs.ids.shape[1]
        rest = torch.full((len(context), self.toy.length - context.shape[1] - width), self.toy.mask_id)
        visible = torch.cat((context, inputs.ids, rest), dim=1)  # (B, L)
        probs = self._mix(self.toy.conditionals(visible)[:, context.shape[1] : context.shape[1] + width])  # (B, W, V)
        if update_cache:
            stored = torch.cat((context, inputs.ids), dim=1)[:, None, :, None]  # (B, 1, C + W, 1)
            cache.write(0, stored, stored)
            cache.next_position += width
        return select_scored(log_probs_as_logits(probs), inputs)
