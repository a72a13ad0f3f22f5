"""Block-diffusion sampling: exact on the toy distribution, consistent with training past the window, stops."""

import pytest
import torch
from toy import ExactBlockDenoiser, ToyDistribution

from discrete_diff.denoiser import Bidirectional, BlockCausal, Causal, DenoiserInput
from discrete_diff.models import KVCache, Transformer, TransformerConfig
from discrete_diff.sampling import (
    STRATEGIES,
    Ancestral,
    BanTokens,
    FirstHitting,
    RepetitionPenalty,
    Temperature,
    TopK,
    TopP,
)
from discrete_diff.sampling.block_diffusion import CleanContext, WithContext, generate_blocks
from discrete_diff.schedules import LogLinearSchedule

SAMPLES = 20000  # 81 outcomes: an exact sampler's expected TV is about 0.02


def toy_samples(toy, block_size, strategy, prompt_length=0, steps=16, seed=0):
    drawn = torch.multinomial(toy.probs, SAMPLES, replacement=True, generator=torch.Generator().manual_seed(9))
    prompt = toy.sequences[drawn][:, :prompt_length]  # prompts drawn from p
    result = generate_blocks(
        ExactBlockDenoiser(toy, block_size),
        prompt,
        toy.length - prompt_length,
        block_size=block_size,
        window=toy.length,
        mask_id=toy.mask_id,
        strategy=strategy,
        steps_per_block=steps,
        schedule=LogLinearSchedule(),
        generator=torch.Generator().manual_seed(seed),
    )
    return torch.cat((prompt, result.tokens), dim=1), result


@pytest.mark.parametrize("strategy", [Ancestral(), FirstHitting()], ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("block_size", [1, 2, 3])
def test_exact_block_denoiser_samples_reproduce_the_toy_distribution(block_size, strategy):
    toy = ToyDistribution(vocab=3, length=4, seed=11)
    samples, _ = toy_samples(toy, block_size, strategy)
    assert samples.shape == (SAMPLES, 4) and toy.total_variation(samples) < 0.04


@pytest.mark.parametrize("prompt_length", [1, 2])
def test_a_continuation_follows_the_conditional_distribution(prompt_length):
    """The prompt is drawn from p; if the continuation is drawn from p(rest | prompt), the pairs follow p. A prompt
    of 1 token is a partial block (pinned in it); one of 2 is a whole block (cached)."""
    toy = ToyDistribution(vocab=3, length=4, seed=12)
    samples, _ = toy_samples(toy, 2, Ancestral(), prompt_length=prompt_length)
    assert toy.total_variation(samples) < 0.04


def test_one_step_per_block_is_measurably_wrong():
    """Revealing a block at once draws its tokens independently: the TV test above must be able to see that."""
    toy = ToyDistribution(vocab=3, length=4, seed=11)
    samples, _ = toy_samples(toy, 2, Ancestral(), steps=1)
    assert toy.total_variation(samples) > 0.06


def tiny_transformer(vocab=8, max_length=8, seed=0):
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, max_length=max_length), vocab).eval()


def training_layout_logits(network, window_tokens, noisy, block_size):
    """Logits at the last block of a training input [x_t ; x_0] over one window, the last block noised to `noisy`."""
    xt = window_tokens.clone()
    xt[:, -block_size:] = noisy
    ids = torch.cat((xt, window_tokens), dim=1)
    positions = torch.arange(window_tokens.shape[1]).repeat(2)
    with torch.no_grad():
        logits = network(DenoiserInput(ids, BlockCausal(block_size), positions=positions))
    return logits[:, window_tokens.shape[1] - block_size : window_tokens.shape[1]]


def test_past_the_training_length_every_call_is_a_training_window():
    """Positions up to 40 > max_length 8: each block's first call (which also caches the block before it) and a
    later call give the logits of the training layout on the window made of the context and the block, at
    positions 0..7; the window slides by re-encoding its latest half."""
    network, block_size, window, mask = tiny_transformer(), 2, 8, 7
    tokens = torch.randint(0, 7, (2, 40), generator=torch.Generator().manual_seed(1))
    context = CleanContext(network, block_size, window)
    for end in range(block_size, 40, block_size):
        context.extend(tokens[:, end - block_size : end])
        denoiser = context.denoiser(block_size)
        seen = context.tokens.shape[1]
        assert 4 <= seen <= window - block_size or end == seen  # half a window after a slide, else growing
        assert torch.equal(context.tokens, tokens[:, end - seen : end])
        for drafted in (0, 1):  # an all-masked block (the fused first call), then one with a token revealed
            noisy = torch.full((2, block_size), mask)
            noisy[:, :drafted] = tokens[:, end : end + drafted]
            with torch.no_grad():
                cached = denoiser(DenoiserInput(noisy, Bidirectional()))  # positions end, end + 1
            layout = training_layout_logits(network, torch.cat((context.tokens, noisy), dim=1), noisy, block_size)
            assert torch.allclose(cached, layout, atol=1e-4), (end, drafted)
        assert context.cache.size == seen and context.cache.next_position == end


def test_merely_dropping_old_keys_would_not_match_training():
    """Why the window is re-encoded: keys of deeper layers computed with older context differ from a window's own."""
    network = tiny_transformer()
    tokens = torch.randint(0, 7, (1, 12), generator=torch.Generator().manual_seed(3))
    grown, fresh = KVCache(len(network.blocks)), KVCache(len(network.blocks))
    fresh.next_position = 6
    with torch.no_grad():
        network(DenoiserInput(tokens, Causal()), cache=grown)
        network(DenoiserInput(tokens[:, 6:], Causal()), cache=fresh)
    grown.trim(6)  # the last 6 positions, whose keys saw the 6 before them
    for layer in range(len(network.blocks)):
        same = torch.allclose(grown.keys[layer], fresh.keys[layer], atol=1e-4)
        assert same == (layer == 0), layer  # the first layer's keys see only their own token


def test_a_long_prompt_costs_no_extra_call():
    """A 20-token prompt, window 8, blocks of 2: the latest half window of it is encoded with the first step."""
    network = tiny_transformer()
    prompt = torch.randint(0, 7, (2, 20), generator=torch.Generator().manual_seed(2))
    common = dict(block_size=2, window=8, mask_id=7, strategy=FirstHitting(), steps_per_block=2,
                  schedule=LogLinearSchedule())  # fmt: skip
    result = generate_blocks(network, prompt, 2, **common)
    assert result.network_calls == 2  # first-hitting: one call per token of the one block
    short = generate_blocks(network, prompt[:, 16:], 2, **common)  # the same window on its own, at positions 0..3
    assert torch.equal(result.tokens, short.tokens)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_and_filter_fills_every_block_past_the_window(name):
    network = tiny_transformer()
    filters = [BanTokens([7]), RepetitionPenalty(1.3, 7), Temperature(0.9), TopK(5), TopP(0.95)]
    result = generate_blocks(
        network, torch.tensor([[1, 2, 3]] * 3), 21, block_size=2, window=8, mask_id=7,
        strategy=STRATEGIES[name](), steps_per_block=4, schedule=LogLinearSchedule(), filters=filters,
    )  # fmt: skip
    assert result.tokens.shape == (3, 21) and not (result.tokens == 7).any()
    # Blocks 1..11 are sampled (block 0 is the prompt's), each in at least one call and at most its 4 steps (a
    # remasking sampler one more); clean blocks ride along with the next block's first call.
    assert 11 <= result.network_calls <= 11 * (5 if name == "remasking" else 4)


def test_generation_stops_once_every_row_has_drawn_the_stop_token():
    network = tiny_transformer()
    only_five = [BanTokens([t for t in range(8) if t != 5])]
    common = dict(block_size=2, window=8, mask_id=7, strategy=Ancestral(), steps_per_block=2,
                  schedule=LogLinearSchedule(), filters=only_five)  # fmt: skip
    stopped = generate_blocks(network, torch.zeros(4, 0, dtype=torch.long), 10, stop_id=5, **common)
    assert stopped.tokens.shape == (4, 2) and (stopped.tokens == 5).all()
    assert stopped.network_calls <= 2  # the first block's steps, nothing more
    full = generate_blocks(network, torch.zeros(4, 0, dtype=torch.long), 10, **common)
    assert full.tokens.shape == (4, 10)


def test_the_repetition_penalty_sees_the_cached_context():
    logits = torch.zeros(1, 2, 4, dtype=torch.float64)
    logits[..., 2] = 1.0
    penalty = WithContext(RepetitionPenalty(2.0, mask_id=3), torch.tensor([[2]]))  # token 2 only in the context
    out = penalty(logits, torch.tensor([[3, 3]]))
    assert torch.equal(out[..., 2], torch.full((1, 2), 0.5, dtype=torch.float64))
    assert torch.equal(out[..., :2], logits[..., :2])


def test_on_step_sees_the_whole_sequence_so_far():
    network, seen = tiny_transformer(), []
    result = generate_blocks(
        network, torch.tensor([[1, 2, 3]]), 7, block_size=2, window=8, mask_id=7, strategy=FirstHitting(),
        steps_per_block=2, schedule=LogLinearSchedule(),
        on_step=lambda tokens, step, time: seen.append((tokens, step)),
    )  # fmt: skip
    starts = [tokens for tokens, step in seen if step == -1]  # each block's run begins with its blanks
    reveals = [tokens for tokens, step in seen if step >= 0]
    assert [t.shape[1] for t in starts] == [4, 6, 8, 10] and all((t[0, -2:] == 7).any() for t in starts)
    assert len(reveals) == 7  # first-hitting: one reveal per step, 7 generated tokens
    assert [t.shape[1] for t in reveals] == [4, 6, 6, 8, 8, 10, 10]  # prompt and blocks so far, the current one whole
    final = reveals[-1][0].tolist()
    assert final[:3] == [1, 2, 3] and final[3:] == result.tokens[0].tolist()
