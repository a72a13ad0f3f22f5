"""Infilling with the exact toy denoiser draws the blank from its true conditional distribution given the rest,
for every strategy that promises exactness; a strategy that reveals two dependent positions at once is measurably
wrong, which shows the test can see errors."""

import pytest
import torch
from toy import ExactDenoiser, ToyDistribution

from discrete_diff.denoiser import DenoiserInput
from discrete_diff.sampling import (
    Ancestral,
    ConfidenceUnmasking,
    FirstHitting,
    Remasking,
    Spans,
    TopTwoMargin,
    run_sampler,
)
from discrete_diff.schedules import LogLinearSchedule

COUNT = 20000
# 9 outcomes, 20,000 draws: an exact sampler's expected TV is about 0.01 (sum of sqrt(p(1-p) / (2 pi n)));
# 0.03 leaves room for chance, far below the 0.43 of drawing the two blank positions independently.
TV_BOUND = 0.03
GIVEN = {0: 0, 3: 1}  # x0 = 0 and x3 = 1 given, positions 1 and 2 blank; seed 1 makes them strongly dependent


pytestmark = pytest.mark.usefixtures("one_thread")


class DistinctRows(torch.nn.Module):
    """The exact denoiser evaluated once per distinct row: the same conditionals, far less enumeration."""

    def __init__(self, toy: ToyDistribution) -> None:
        super().__init__()
        self.exact = ExactDenoiser(toy)

    time_conditioned = False

    def forward(self, inputs: DenoiserInput):
        rows, inverse = inputs.ids.unique(dim=0, return_inverse=True)
        return self.exact(DenoiserInput(rows, inputs.attention))[inverse]  # (B, L, V + 1)


@pytest.fixture(scope="module")
def toy():
    return ToyDistribution(vocab=3, length=4, seed=1)


def true_conditional(toy) -> dict[tuple[int, int], float]:
    keep = torch.ones(len(toy.sequences), dtype=torch.bool)
    for position, value in GIVEN.items():
        keep &= toy.sequences[:, position] == value
    probs = toy.probs[keep] / toy.probs[keep].sum()
    return {tuple(seq[1:3].tolist()): float(p) for seq, p in zip(toy.sequences[keep], probs, strict=True)}


def infill_tv(toy, strategy, steps) -> float:
    tokens = torch.full((COUNT, toy.length), toy.mask_id)
    for position, value in GIVEN.items():
        tokens[:, position] = value
    result = run_sampler(
        DistinctRows(toy), tokens, mask_id=toy.mask_id, strategy=strategy, num_steps=steps,
        schedule=LogLinearSchedule(), generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    for position, value in GIVEN.items():
        assert (result.tokens[:, position] == value).all()
    truth = true_conditional(toy)
    pairs, counts = result.tokens[:, 1:3].unique(dim=0, return_counts=True)
    empirical = {tuple(p.tolist()): c / COUNT for p, c in zip(pairs, counts.tolist(), strict=True)}
    return 0.5 * sum(abs(empirical.get(k, 0.0) - truth.get(k, 0.0)) for k in truth.keys() | empirical.keys())


EXACT = {
    "ancestral-64": (Ancestral(), 64),
    "first-hitting": (FirstHitting(), 1),
    "confidence-one-per-step": (ConfidenceUnmasking(reveals_per_step=1), 1),
    "confidence-margin-one-per-step": (ConfidenceUnmasking(TopTwoMargin(), reveals_per_step=1), 1),
    "remasking-128": (Remasking(eta=0.1), 128),
    "spans-first-hitting": (Spans(FirstHitting(), span_length=2), 1),
}


@pytest.mark.parametrize("case", EXACT)
def test_infilling_draws_from_the_true_conditional(toy, case):
    strategy, steps = EXACT[case]
    assert infill_tv(toy, strategy, steps) < TV_BOUND


def test_revealing_both_blanks_at_once_is_measurably_wrong(toy):
    assert infill_tv(toy, ConfidenceUnmasking(reveals_per_step=2), 1) > 0.3


@pytest.mark.parametrize("strategy", [FirstHitting(), ConfidenceUnmasking(reveals_per_step=1)], ids=repr)
def test_unconditional_samples_reproduce_the_toy_distribution(strategy):
    toy = ToyDistribution(vocab=3, length=3, seed=3)
    tokens = torch.full((COUNT, toy.length), toy.mask_id)
    result = run_sampler(
        DistinctRows(toy), tokens, mask_id=toy.mask_id, strategy=strategy, num_steps=3,
        schedule=LogLinearSchedule(), generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert result.network_calls == toy.length
    # 27 outcomes and 20,000 samples: an exact sampler's expected TV is about 0.012 (as in test_exactness).
    assert toy.total_variation(result.tokens) < 0.03


class TimeRecorder(DistinctRows):
    """The exact denoiser, declared time-conditioned, noting the time of every call."""

    time_conditioned = True

    def __init__(self, toy: ToyDistribution) -> None:
        super().__init__(toy)
        self.times: list[list[float]] = []

    def forward(self, inputs: DenoiserInput):
        self.times.append(inputs.t.tolist())
        return super().forward(inputs)


def test_a_time_conditioned_denoiser_is_called_at_every_step_with_the_current_time():
    toy = ToyDistribution(vocab=3, length=3, seed=3)
    recorder, steps = TimeRecorder(toy), 6
    tokens = torch.full((2, toy.length), toy.mask_id)
    result = run_sampler(
        recorder, tokens, mask_id=toy.mask_id, strategy=Ancestral(), num_steps=steps, schedule=LogLinearSchedule(),
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    # No output is reused (it depends on t); steps after the last reveal are skipped; t_k = 1 - k / steps.
    called = len(recorder.times)
    assert result.network_calls == called and called >= 3
    assert recorder.times == [[pytest.approx(1 - k / steps)] * 2 for k in range(called)]
