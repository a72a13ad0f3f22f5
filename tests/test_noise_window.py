"""The clipped-window chooser against exact variances of the loss on the toy distribution."""

import numpy as np
import pytest
import torch
from toy import ExactBlockDenoiser, ToyDistribution, toy_batch

from discrete_diff.errors import InvalidArgument
from discrete_diff.objectives import BlockDiffusion
from discrete_diff.objectives.noise_window import choose_noise_window
from discrete_diff.schedules import ClippedSchedule, LinearSchedule, training_interval

WINDOWS = [(0.0, 1.0), (0.3, 0.8), (0.45, 0.95), (0.1, 0.5)]


def block_values(objective, denoiser, x0, mask_id):
    """For each block: its sub-patterns (S, n_b) and the summed NLL of each, (S,), the other blocks clean."""
    length = x0.shape[1]
    block = torch.arange(length) // objective.block_size
    values = []
    for b in range(objective.num_blocks(length)):
        positions = (block == b).nonzero().squeeze(-1)
        subs = torch.tensor(list(np.ndindex(*([2] * len(positions)))), dtype=torch.bool)  # (S, n_b)
        masked = torch.zeros(len(subs), length, dtype=torch.bool)
        masked[:, positions] = subs
        with torch.no_grad():
            nll = objective.block_nll(denoiser, toy_batch(x0.expand(len(subs), -1)), masked, mask_id)[:, b]
        values.append((subs, nll.double()))
    return values


def exact_variance(objective, values, low, high, tokens, nodes=200):
    """Var over t_b ~ U[low, high] and masks of (1/tokens) sum_b w(t_b) NLL_b: blocks are independent, so the
    variance is the sum of the blocks'. Quadrature in u = log t, where the 1/t weights are smooth."""
    points, weights = np.polynomial.legendre.leggauss(nodes)
    u = np.log(low) + (np.log(high) - np.log(low)) * (points + 1) / 2
    dt = weights / 2 * (np.log(high) - np.log(low)) * np.exp(u) / (high - low)  # density of U[low, high] in u
    t = torch.tensor(np.exp(u))
    p = objective.schedule.mask_probability(t)[:, None]  # (Q, 1)
    w = objective.schedule.weight(t)[:, None]
    total = 0.0
    for subs, nll in values:
        k = subs.sum(-1)[None, :]  # (1, S)
        probability = p**k * (1 - p) ** (subs.shape[1] - k)  # (Q, S)
        first = (torch.tensor(dt)[:, None] * probability * w * nll).sum()
        second = (torch.tensor(dt)[:, None] * probability * (w * nll) ** 2).sum()
        total += float(second - first**2)
    return total / tokens**2


def test_the_chosen_window_is_the_one_of_least_exact_variance():
    toy = ToyDistribution(vocab=3, length=4, seed=5)
    objective = BlockDiffusion(2, LinearSchedule())
    denoiser = ExactBlockDenoiser(toy, 2)
    sequences = toy.sequences[::5]  # 17 sequences, one batch each
    batches = [toy_batch(x[None]) for x in sequences]
    exact = []
    for beta, omega in WINDOWS:
        low, high = training_interval(ClippedSchedule(LinearSchedule(), beta, omega), objective.t_min)
        per_sequence = [exact_variance(objective, block_values(objective, denoiser, x[None], toy.mask_id), low, high, 4)
                        for x in sequences]  # fmt: skip
        exact.append(sum(per_sequence) / len(per_sequence))
    best, scores = choose_noise_window(objective, denoiser, batches, toy.mask_id, WINDOWS, draws=128, seed=0)
    assert (best.beta, best.omega) == WINDOWS[int(np.argmin(exact))]
    for score, value, (beta, _) in zip(scores, exact, WINDOWS, strict=True):
        # Inside a window away from 0 the weights are bounded and a variance from 17 x 128 draws is within a few
        # percent; down to t_min = 1e-3 the 1/t weights make the estimate of a variance itself heavy-tailed.
        if beta > 0:
            assert score.variance == pytest.approx(value, rel=0.1)
    assert exact[0] > 5 * min(exact)  # the full range's 1/t weights make it the noisiest, as BD3-LM found
    assert scores[0].variance > max(score.variance for score in scores[1:])


def test_bad_windows_are_refused():
    objective, denoiser = BlockDiffusion(2), ExactBlockDenoiser(ToyDistribution(), 2)
    with pytest.raises(InvalidArgument, match="need 0 <= beta < omega <= 1"):
        choose_noise_window(objective, denoiser, [], 3, [(0.5, 0.2)])
    with pytest.raises(InvalidArgument, match="draws must be at least 2"):
        choose_noise_window(objective, denoiser, [toy_batch(torch.zeros(1, 3, dtype=torch.long))], 3, [(0, 1)], draws=1)
