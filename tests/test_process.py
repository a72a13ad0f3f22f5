import torch

from discrete_diff.process import forward_mask, masked_token_nll, nelbo, sample_times, subs_log_probs
from discrete_diff.schedules import CosineSchedule, LogLinearSchedule


def test_antithetic_times_are_evenly_spread():
    t = sample_times(64, antithetic=True, t_min=0.0, generator=torch.Generator().manual_seed(1))
    gaps = torch.diff(torch.sort(t).values)
    assert torch.allclose(gaps, torch.full_like(gaps, 1 / 64), atol=1e-6)
    assert float(t.min()) >= 0.0 and float(t.max()) < 1.0


def test_times_respect_t_min():
    t = sample_times(1000, antithetic=False, t_min=0.2, generator=torch.Generator().manual_seed(0))
    assert float(t.min()) >= 0.2 and float(t.max()) <= 1.0


def test_masking_rate_is_one_minus_alpha():
    schedule = CosineSchedule()
    x0 = torch.randint(0, 10, (4, 20000))
    t = torch.tensor([0.1, 0.4, 0.7, 0.95])
    _, masked = forward_mask(
        x0,
        t,
        schedule,
        maskable=torch.ones_like(x0, dtype=torch.bool),
        mask_id=10,
        generator=torch.Generator().manual_seed(0),
    )
    rate = masked.double().mean(-1)
    expected = 1 - schedule.alpha(t.double())
    assert torch.allclose(rate, expected, atol=0.015)


def test_unmaskable_positions_are_never_masked():
    x0 = torch.randint(0, 10, (8, 64))
    maskable = torch.rand(8, 64, generator=torch.Generator().manual_seed(3)) < 0.5
    xt, masked = forward_mask(x0, torch.full((8,), 0.999), LogLinearSchedule(), maskable=maskable, mask_id=10)
    assert not masked[~maskable].any()
    assert torch.equal(xt[~maskable], x0[~maskable])
    assert bool((xt[masked] == 10).all()) and masked[maskable].float().mean() > 0.9


def test_subs_never_predicts_mask():
    log_probs = subs_log_probs(torch.randn(2, 5, 7), mask_id=6)
    assert torch.all(log_probs[..., 6] == -torch.inf)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 5))


def test_nelbo_counts_only_masked_positions_with_weight():
    x0 = torch.tensor([[1, 2, 3]])
    log_probs = torch.log(torch.full((1, 3, 5), 0.25))
    masked = torch.tensor([[True, False, True]])
    token_nll = -log_probs.gather(-1, x0.unsqueeze(-1)).squeeze(-1) * masked
    stats = nelbo(token_nll, masked, torch.tensor([0.5]), LogLinearSchedule(0.0), torch.ones_like(masked))
    expected = (1 / 0.5) * 2 * torch.log(torch.tensor(4.0))
    assert torch.allclose(stats.per_sequence, expected.reshape(1))
    assert torch.allclose(stats.loss, expected / 3)


def test_training_weightings_reduce_the_same_masked_cross_entropies():
    x0 = torch.tensor([[1, 2, 3, 4], [4, 3, 2, 1]])
    log_probs = torch.log_softmax(torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(0)), dim=-1)
    masked = torch.tensor([[True, False, False, False], [True, True, True, False]])
    nll = -log_probs.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    stats = nelbo(nll * masked, masked, torch.tensor([0.1, 0.7]), LogLinearSchedule(0.0), torch.ones_like(masked))
    first, second = nll[0, 0], nll[1, :3]
    assert torch.allclose(stats.masked_cross_entropy, (first + second.sum()) / 4)
    assert torch.allclose(stats.sequence_cross_entropy, (first + second.mean()) / 2)
    assert torch.allclose(stats.per_sequence, torch.stack((first / 0.1, second.sum() / 0.7)))


def test_masked_token_nll_from_selected_logits_equals_the_full_computation():
    """A network asked for the masked positions only (score_at) must give the loss the full logits give."""
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 5, 7, generator=generator)
    x0 = torch.randint(0, 6, (3, 5), generator=generator)
    masked = torch.rand(3, 5, generator=generator) < 0.5
    full = masked_token_nll(logits, x0, masked, mask_id=6)
    selected = masked_token_nll(logits[masked], x0, masked, mask_id=6)
    expected = -subs_log_probs(logits, 6).gather(-1, x0.unsqueeze(-1)).squeeze(-1) * masked
    assert torch.allclose(full, expected) and torch.allclose(selected, expected)
    assert torch.all(full[~masked] == 0)


def test_a_non_finite_prediction_makes_the_nelbo_non_finite_and_unmasked_rows_add_nothing():
    masked = torch.tensor([[True, False, False], [False, False, False]])
    token_nll = torch.tensor([[float("nan"), 0.0, 0.0], [0.0, 0.0, 0.0]])
    maskable = torch.ones(2, 3, dtype=torch.bool)
    stats = nelbo(token_nll, masked, torch.tensor([0.5, 1e-30]), LogLinearSchedule(), maskable)
    assert stats.loss.isnan() and stats.per_sequence[0].isnan()  # never hidden as a zero loss
    assert stats.per_sequence[1] == 0  # nothing masked: no term, however large a tiny t makes the weight
