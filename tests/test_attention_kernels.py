"""Block diffusion's chunked attention equals the dense block-causal mask, in values and in gradients."""

import pytest
import torch
import torch.nn.functional as F

from discrete_diff.attention_kernels import CHUNK_POSITIONS, BlockChunks
from discrete_diff.denoiser import BlockCausal, DenoiserInput, Explicit
from discrete_diff.models import Transformer, TransformerConfig

HALF = 150
"""Positions per half: more than two chunks, and not a multiple of 4, 8 or 16 (a partial last block)."""
BLOCK_SIZES = (1, 4, 8, 16, HALF)
# Gradients sum over chunks in another order than the dense path: fp32 rounding differs by up to ~2e-6 on some CPUs'
# kernels (AVX-512); one key wrongly let in or kept out moves them by ~1 / keys, 1e-3 here.
GRADIENT_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def dense(block_size: int, padding: torch.Tensor | None) -> Explicit:
    """The reference: the pattern's full (2N, 2N) mask through one SDPA call."""
    return Explicit(BlockCausal(block_size).structure(2 * HALF, torch.device("cpu")), padding)


def padding_of(batch: int) -> torch.Tensor:
    """(B, 2N): the second sequence ends 37 tokens early in both halves."""
    real = torch.ones(batch, HALF, dtype=torch.bool)
    real[1, HALF - 37 :] = False
    return torch.cat((real, real), dim=1)


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("padded", [False, True])
def test_chunks_match_the_dense_mask_in_values_and_gradients(block_size, padded):
    assert HALF > 2 * CHUNK_POSITIONS
    generator = torch.Generator().manual_seed(block_size)
    q, k, v = (torch.randn(2, 3, 2 * HALF, 8, generator=generator, requires_grad=True) for _ in range(3))
    padding = padding_of(2) if padded else None
    chunked = BlockCausal(block_size, padding).kernel(2 * HALF, torch.device("cpu"))
    reference = dense(block_size, padding).kernel(2 * HALF, torch.device("cpu"))
    assert isinstance(chunked, BlockChunks)
    fast, slow = chunked(q, k, v), reference(q, k, v)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    weights = torch.randn(fast.shape, generator=generator)
    grads_fast = torch.autograd.grad((fast * weights).sum(), (q, k, v))
    grads_slow = torch.autograd.grad((slow * weights).sum(), (q, k, v))
    for a, b in zip(grads_fast, grads_slow, strict=True):
        torch.testing.assert_close(a, b, **GRADIENT_TOLERANCE)


def test_a_wrong_pattern_is_caught():
    """Negative control: the chunks of blocks of 4 against the dense mask of blocks of 8 differ."""
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 2 * HALF, 8, generator=generator) for _ in range(3))
    fast = BlockCausal(4).kernel(2 * HALF, torch.device("cpu"))(q, k, v)
    other = dense(8, None).kernel(2 * HALF, torch.device("cpu"))(q, k, v)
    assert (fast - other).abs().max() > 1e-2


def test_chunks_skip_most_scores():
    """What makes it fast: at length 256 per half the chunks compute well under half of the (2N)^2 scores."""
    assert scores(BlockChunks(4, 512, None, torch.device("cpu"))) / 512**2 < 0.45


def scores(kernel: BlockChunks) -> int:
    """Scores one head of one sequence computes with every query: each chunk's mask is (1, streams, 1, n, keys)."""
    return sum(chunk.mask.shape[1] * chunk.mask.shape[-2] * chunk.mask.shape[-1] for chunk in kernel.chunks)


@pytest.mark.parametrize("copies", [2, 4])
def test_k_copies_compute_a_share_of_k_separate_passes_scores(copies):
    """No score between two noisy copies is computed: k copies cost (k + 1) / 2k of k two-stream passes' scores."""
    single = scores(BlockChunks(4, 512, None, torch.device("cpu")))
    shared = scores(BlockChunks(4, (copies + 1) * 256, None, torch.device("cpu"), copies))
    assert shared == pytest.approx(single * copies * (copies + 1) / (2 * copies))


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_the_transformer_gives_the_same_logits_through_either_path(block_size):
    torch.manual_seed(0)
    network = Transformer(TransformerConfig(d_model=32, n_layers=2, n_heads=4, max_length=HALF), vocab_size=12).eval()
    ids = torch.randint(0, 12, (2, 2 * HALF))
    positions = torch.arange(HALF).repeat(2)  # (2N,) both halves at 0..N-1, as block diffusion calls it
    padding = padding_of(2)
    fast = network(DenoiserInput(ids, BlockCausal(block_size, padding), positions=positions))
    slow = network(DenoiserInput(ids, dense(block_size, padding), positions=positions))
    real = padding[..., None].expand_as(fast)
    torch.testing.assert_close(fast[real], slow[real], rtol=1e-4, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast16 = network(DenoiserInput(ids, BlockCausal(block_size, padding), positions=positions))
        slow16 = network(DenoiserInput(ids, dense(block_size, padding), positions=positions))
    # bf16 tolerance: both round the same activations to 8 bits of mantissa, in different orders.
    assert (fast16.float() - slow16.float())[real].abs().max() < 0.05
    assert F.cosine_similarity(fast16.float()[real].view(-1), slow16.float()[real].view(-1), dim=0) > 0.9999


@pytest.mark.parametrize("queries", [HALF, 97, HALF + 31])
def test_a_query_prefix_gets_the_full_outputs_first_rows(queries):
    """The last layer runs only the scored prefix (block diffusion: the noisy half); every kernel agrees."""
    generator = torch.Generator().manual_seed(queries)
    q, k, v = (torch.randn(2, 3, 2 * HALF, 8, generator=generator) for _ in range(3))
    padding = padding_of(2)
    for pattern in (BlockCausal(4, padding), dense(4, padding)):
        kernel = pattern.kernel(2 * HALF, torch.device("cpu"))
        torch.testing.assert_close(kernel(q[:, :, :queries], k, v), kernel(q, k, v)[:, :, :queries])


def test_scoring_the_noisy_half_gives_the_same_logits_as_scoring_everything():
    torch.manual_seed(0)
    network = Transformer(TransformerConfig(d_model=32, n_layers=2, n_heads=4, max_length=HALF), vocab_size=12).eval()
    ids = torch.randint(0, 12, (2, 2 * HALF))
    positions = torch.arange(HALF).repeat(2)
    scored = torch.zeros(2, 2 * HALF, dtype=torch.bool)
    scored[:, :HALF] = torch.rand(2, HALF) < 0.5  # noisy half only, as block diffusion scores
    for pattern in (BlockCausal(8), dense(8, None)):
        full = network(DenoiserInput(ids, pattern, positions=positions))  # (B, 2N, V)
        prefix = network(DenoiserInput(ids, pattern, positions=positions, score_at=scored))  # (N scored, V)
        torch.testing.assert_close(prefix, full[scored], rtol=1e-5, atol=1e-6)


def copies_padding(batch: int, copies: int) -> torch.Tensor:
    """(B, (k + 1) N): `padding_of`'s rows over every stream."""
    return padding_of(batch)[:, :HALF].repeat(1, copies + 1)


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("copies", [2, 3])
def test_chunks_over_noisy_copies_match_the_dense_mask_in_values_and_gradients(block_size, copies):
    length = (copies + 1) * HALF
    generator = torch.Generator().manual_seed(block_size + copies)
    q, k, v = (torch.randn(2, 3, length, 8, generator=generator, requires_grad=True) for _ in range(3))
    padding = copies_padding(2, copies)
    chunked = BlockCausal(block_size, padding, copies).kernel(length, torch.device("cpu"))
    dense_mask = BlockCausal(block_size, copies=copies).structure(length, torch.device("cpu"))
    reference = Explicit(dense_mask, padding).kernel(length, torch.device("cpu"))
    fast, slow = chunked(q, k, v), reference(q, k, v)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    weights = torch.randn(fast.shape, generator=generator)
    grads_fast = torch.autograd.grad((fast * weights).sum(), (q, k, v))
    grads_slow = torch.autograd.grad((slow * weights).sum(), (q, k, v))
    for a, b in zip(grads_fast, grads_slow, strict=True):
        torch.testing.assert_close(a, b, **GRADIENT_TOLERANCE)


def test_each_noisy_copy_sees_the_one_copy_pattern_and_no_other_copy():
    """In the (3N, 3N) pattern of two copies, [copy i ; clean] is the two-stream pattern; copies never meet."""
    n, device = 12, torch.device("cpu")
    single = BlockCausal(4).structure(2 * n, device)
    double = BlockCausal(4, copies=2).structure(3 * n, device)
    clean = slice(2 * n, 3 * n)
    for i, other in ((0, 1), (1, 0)):
        own = slice(i * n, (i + 1) * n)
        index = torch.cat((torch.arange(3 * n)[own], torch.arange(3 * n)[clean]))
        assert torch.equal(double[index][:, index], single)
        assert not double[own, other * n : (other + 1) * n].any()
    assert not double[clean, : 2 * n].any()


@pytest.mark.parametrize("queries", [HALF, HALF + 97, 2 * HALF, 2 * HALF + 31])
def test_a_query_prefix_over_noisy_copies_gets_the_full_outputs_first_rows(queries):
    """Two copies: a prefix ending in the first copy, inside the second, at its end, or in the clean stream."""
    generator = torch.Generator().manual_seed(queries)
    q, k, v = (torch.randn(2, 3, 3 * HALF, 8, generator=generator) for _ in range(3))
    kernel = BlockCausal(4, copies_padding(2, 2), copies=2).kernel(3 * HALF, torch.device("cpu"))
    torch.testing.assert_close(kernel(q[:, :, :queries], k, v), kernel(q, k, v)[:, :, :queries])
