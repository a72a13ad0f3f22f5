"""Block diffusion through FlexAttention: the same pattern as the dense mask, and a fallback that never fails."""

import logging

import pytest
import torch
from torch._inductor import config as inductor
from torch.nn.attention.flex_attention import create_mask

from discrete_diff import attention_kernels
from discrete_diff.attention_kernels import BlockChunks, FlexBlock, block_kernel, flex_compiles
from discrete_diff.denoiser import BlockCausal, Explicit

HALF = 150
"""Positions per stream: not a multiple of 4, 8 or 16 (a partial last block), not of FlexAttention's 128 tiles."""
CPU = torch.device("cpu")


def padding_of(batch: int, streams: int) -> torch.Tensor:
    """(B, streams N): the second sequence ends 37 tokens early in every stream."""
    real = torch.ones(batch, HALF, dtype=torch.bool)
    real[1, HALF - 37 :] = False
    return real.repeat(1, streams)


@pytest.mark.parametrize("block_size", [1, 4, 8, 16, HALF])
@pytest.mark.parametrize("copies", [1, 2])
def test_the_flex_rule_is_the_dense_pattern_with_padding(block_size, copies):
    length = (copies + 1) * HALF
    padding = padding_of(2, copies + 1)
    rule = FlexBlock(block_size, length, padding, CPU, copies).rule
    allowed = create_mask(rule, 2, 1, length, length, device=CPU)  # (B, 1, L, L)
    structure = BlockCausal(block_size, copies=copies).structure(length, CPU)  # (L, L)
    assert torch.equal(allowed[:, 0], structure[None] & padding[:, None, :])


def test_a_wrong_block_size_is_caught():
    """Negative control: the rule for blocks of 4 is not the pattern of blocks of 8."""
    rule = FlexBlock(4, 2 * HALF, None, CPU).rule
    allowed = create_mask(rule, 1, 1, 2 * HALF, 2 * HALF, device=CPU)[0, 0]
    assert not torch.equal(allowed, BlockCausal(8).structure(2 * HALF, CPU))


def reset_compilation() -> None:
    flex_compiles.cache_clear()
    attention_kernels.compiled_flex_attention.cache_clear()
    torch._dynamo.reset()


def test_without_a_compiler_flex_falls_back_to_chunks_with_one_line(caplog):
    reset_compilation()
    try:
        with inductor.patch({"cpp.cxx": ("no-such-compiler-here",)}), torch.no_grad():
            with caplog.at_level(logging.WARNING, logger=attention_kernels.__name__):
                kernel = block_kernel(4, 2 * HALF, None, CPU, flex=True)
                again = block_kernel(4, 2 * HALF, None, CPU, flex=True)
        assert isinstance(kernel, BlockChunks) and isinstance(again, BlockChunks)
        assert len(caplog.records) == 1 and "FlexAttention does not run here" in caplog.records[0].getMessage()
    finally:
        reset_compilation()


def inputs(requires_grad: bool) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(2, 2, 2 * HALF, 16, generator=generator, requires_grad=requires_grad) for _ in range(3))


def reference(padding: torch.Tensor):
    return Explicit(BlockCausal(4).structure(2 * HALF, CPU), padding).kernel(2 * HALF, CPU)


def test_compiled_flex_matches_the_dense_mask_in_evaluation():
    if not flex_compiles("cpu", False):
        pytest.skip("FlexAttention does not compile on this machine (the fallback is tested above)")
    q, k, v = inputs(requires_grad=False)
    padding = padding_of(2, 2)
    with torch.no_grad():
        flex = block_kernel(4, 2 * HALF, padding, CPU, flex=True)
        assert isinstance(flex, FlexBlock)
        fast, slow = flex(q, k, v), reference(padding)(q, k, v)
    real = padding[:, None, :, None]  # (B, 1, L, 1): compare the rows of real queries
    torch.testing.assert_close(fast * real, slow * real, rtol=1e-4, atol=1e-5)
    shorter = flex(q[:, :, :HALF], k, v)  # the last layer's noisy queries alone
    torch.testing.assert_close(shorter * real[:, :, :HALF], slow[:, :, :HALF] * real[:, :, :HALF], rtol=1e-4, atol=1e-5)


def test_training_uses_flex_only_where_its_backward_runs():
    """On CPU torch has no FlexAttention backward: a training step gets the chunks; where it runs, its gradients are
    the dense mask's."""
    q, k, v = inputs(requires_grad=True)
    padding = padding_of(2, 2)
    kernel = block_kernel(4, 2 * HALF, padding, CPU, flex=True)
    if not flex_compiles("cpu", True):
        assert isinstance(kernel, BlockChunks)
        return
    fast, slow = kernel(q, k, v), reference(padding)(q, k, v)
    weights = torch.randn(fast.shape, generator=torch.Generator().manual_seed(1)) * padding[:, None, :, None]
    grads_fast = torch.autograd.grad((fast * weights).sum(), (q, k, v))
    grads_slow = torch.autograd.grad((slow * weights).sum(), (q, k, v))
    for a, b in zip(grads_fast, grads_slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
