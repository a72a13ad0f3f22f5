"""The approximate key-value caches of a bidirectional denoiser (prefix, dual, dKV): refreshed every call they are the
uncached sampler to the bit; with one layer (keys and values depend only on the token and its position) they are
exact at every call while running fewer positions; with two layers they approximate; semi-autoregressive decoding
(spans) is the loop run one block at a time."""

import argparse

import pytest
import torch
from tiny_checkpoints import text_checkpoint

from discrete_diff.cli import main
from discrete_diff.commands.sampling_options import add_sampling_arguments, settings_from_args
from discrete_diff.denoiser import Bidirectional, DenoiserInput
from discrete_diff.errors import InvalidArgument
from discrete_diff.models.transformer import Transformer, TransformerConfig
from discrete_diff.sampling import Ancestral, Remasking, SamplingSettings, Spans, ThresholdUnmasking, run_sampler
from discrete_diff.sampling.bidirectional_cache import CACHE_KINDS, CachedDenoiser, cached_denoiser
from discrete_diff.sampling.settings import settings_header
from discrete_diff.schedules import LogLinearSchedule

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB, MASK, PAD, LENGTH, SPAN = 12, 11, 10, 24, 8


def network(layers: int, seed: int = 0) -> Transformer:
    """A random transformer with weights large enough that its outputs depend strongly on the context."""
    torch.manual_seed(seed)
    net = Transformer(TransformerConfig(d_model=32, n_layers=layers, n_heads=4, max_length=64), VOCAB)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0, 0.3)
    return net.eval()


def blanks(rows: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of [MASK]; the last row is padded after 19 positions. Returns the tokens and the attention mask."""
    tokens = torch.full((rows, LENGTH), MASK)
    tokens[-1, 19:] = PAD
    return tokens, tokens != PAD


def strategy_for(kind: str, inner=None):
    inner = inner or ThresholdUnmasking(0.3)
    return Spans(inner, span_length=SPAN) if kind in ("prefix", "dual") else inner


def sample(denoiser, strategy, seed: int = 0, steps: int = 12):
    tokens, attention = blanks()
    return run_sampler(
        denoiser, tokens, mask_id=MASK, strategy=strategy, num_steps=steps, schedule=LogLinearSchedule(),
        attention_mask=attention, generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip


@pytest.mark.parametrize("kind", CACHE_KINDS)
@pytest.mark.parametrize("inner", [ThresholdUnmasking(0.3), Ancestral()])
def test_refreshed_every_call_a_cache_is_the_uncached_sampler(kind, inner):
    net, strategy = network(2), strategy_for(kind, inner)
    plain = sample(net, strategy)
    cached = sample(cached_denoiser(net, kind, MASK, strategy, refresh_every=1), strategy)
    assert torch.equal(cached.tokens, plain.tokens)
    assert cached.network_calls == plain.network_calls


class Compared:
    """Calls the cached denoiser and the plain network on the same inputs; keeps the largest difference at the
    positions the cache ran (elsewhere its logits are older: revealed positions, or outside the block)."""

    def __init__(self, cached: CachedDenoiser, plain: Transformer) -> None:
        self.cached, self.plain, self.largest = cached, plain, 0.0
        self.time_conditioned = False

    def __call__(self, inputs: DenoiserInput) -> torch.Tensor:
        cached, plain = self.cached(inputs), self.plain(inputs)  # (B, L, V) each
        ran = torch.zeros_like(inputs.ids, dtype=torch.bool)
        ran[:, self.cached.last_run] = True
        ran &= inputs.attention.padding  # (B, L): padded positions' outputs are read by nobody
        self.largest = max(self.largest, float((cached - plain).abs()[ran].max()))
        return plain


@pytest.mark.parametrize("kind", CACHE_KINDS)
def test_with_one_layer_every_cache_is_exact_at_every_call_and_runs_fewer_positions(kind):
    """First-layer keys and values depend on the token and its position only: reusing them for unchanged
    positions changes nothing, so the logits match at every call while a share of the positions is skipped."""
    net = network(1)
    strategy = strategy_for(kind)
    compared = Compared(cached_denoiser(net, kind, MASK, strategy), net)
    result = sample(compared, strategy)
    assert not (result.tokens == MASK).any()
    assert compared.largest < 1e-4
    # fewer positions than the uncached sampler: how many fewer follows the trajectory, which fp32 rounding on
    # another CPU's kernels can change
    assert compared.cached.positions_run < compared.cached.calls * LENGTH


@pytest.mark.parametrize("kind", CACHE_KINDS)
def test_with_two_layers_a_cache_approximates_and_a_refresh_resets_it(kind):
    """Deeper keys carry what a position saw when they were computed: stale ones change the logits. A refresh
    every 2 calls runs more positions than none."""
    net = network(2)
    strategy = strategy_for(kind)
    compared = Compared(cached_denoiser(net, kind, MASK, strategy), net)
    sample(compared, strategy)
    assert compared.largest > 1e-3
    never, every_two = (cached_denoiser(net, kind, MASK, strategy, refresh_every=n) for n in (None, 2))
    sample(never, strategy), sample(every_two, strategy)
    assert never.share_run < every_two.share_run < 1.0


def test_the_dual_cache_runs_the_block_alone_and_the_prefix_cache_the_block_and_after():
    """Block 0 (8 positions) then 1 and 2: after each block's first (refreshing) call, dual runs 8 positions a
    call and prefix 24, 16, 8."""
    net = network(2)
    strategy = strategy_for("dual", ThresholdUnmasking(1.0))  # one reveal per call: 8 calls per block
    runs = {}
    for kind in ("prefix", "dual"):
        cached, seen = cached_denoiser(net, kind, MASK, strategy), []

        def counted(inputs, cached=cached, seen=seen):
            logits = cached(inputs)
            seen.append(cached.last_run.numel())
            return logits

        counted.time_conditioned = False
        tokens = torch.full((2, LENGTH), MASK)
        run_sampler(counted, tokens, mask_id=MASK, strategy=strategy, num_steps=1, schedule=LogLinearSchedule())
        runs[kind] = seen
    assert runs["dual"] == ([24] + [8] * 7) * 3  # each block: a refresh, then the block alone
    assert runs["prefix"] == [24] + [24] * 7 + [24] + [16] * 7 + [24] + [8] * 7


class BlockOfSequence:
    """The network over a whole sequence with everything outside one block fixed; logits of the block only."""

    def __init__(self, net: Transformer, sequence: torch.Tensor, start: int) -> None:
        self.net, self.sequence, self.start = net, sequence, start
        self.time_conditioned = False

    def __call__(self, inputs: DenoiserInput) -> torch.Tensor:
        whole = self.sequence.clone()
        whole[:, self.start : self.start + inputs.ids.shape[1]] = inputs.ids
        logits = self.net(DenoiserInput(whole, Bidirectional(), t=inputs.t))  # (B, L, V)
        return logits[:, self.start : self.start + inputs.ids.shape[1]]


def test_semi_autoregressive_decoding_is_the_loop_run_one_block_at_a_time():
    """Spans with a deterministic inner strategy (the top token, threshold 0.5) equals running the loop on each
    block in turn, the finished blocks before it and [MASK] after it."""
    net, inner = network(2), ThresholdUnmasking(0.5, argmax=True)
    tokens = torch.full((3, LENGTH), MASK)
    spans = run_sampler(net, tokens, mask_id=MASK, strategy=Spans(inner, SPAN), num_steps=1,
                        schedule=LogLinearSchedule())  # fmt: skip
    sequence, calls = tokens.clone(), 0
    for start in range(0, LENGTH, SPAN):
        block = run_sampler(BlockOfSequence(net, sequence, start), sequence[:, start : start + SPAN], mask_id=MASK,
                            strategy=inner, num_steps=1, schedule=LogLinearSchedule())  # fmt: skip
        sequence[:, start : start + SPAN] = block.tokens
        calls += block.network_calls
    assert torch.equal(spans.tokens, sequence)
    assert spans.network_calls == calls


def parse(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sampling_arguments(parser)
    return parser.parse_args(list(flags))


def test_options_settings_and_bad_values():
    settings = settings_from_args(parse("--strategy", "spans", "--inner-strategy", "threshold", "--cache", "dual"))
    assert (settings.cache, settings.cache_refresh) == ("dual", None)
    assert "cache=dual" in settings_header(settings)
    assert settings_from_args(parse("--cache", "dkv", "--cache-refresh", "4")).cache_refresh == 4
    assert SamplingSettings().cache is None  # off by default
    with pytest.raises(InvalidArgument, match="cache dual decodes block by block: it needs the spans strategy"):
        settings_from_args(parse("--cache", "dual"))
    with pytest.raises(InvalidArgument, match="cache_refresh must be at least 1"):
        SamplingSettings(cache="dkv", cache_refresh=0)
    with pytest.raises(InvalidArgument, match="cache_refresh applies only with a cache"):
        SamplingSettings(cache_refresh=2)
    with pytest.raises(InvalidArgument, match="remasking strategy"):
        SamplingSettings(strategy=Remasking(), cache="dkv")


def test_the_sample_command_samples_with_each_cache_and_refreshed_every_call_draws_the_uncached_samples(
    tmp_path, capsys
):
    path = text_checkpoint(tmp_path)
    spans = ["--strategy", "spans", "--inner-strategy", "threshold", "--span-length", "8"]
    common = ["sample", "--checkpoint", path, "--num", "3", "--length", "20", "--seed", "3", *spans]
    assert main(common) == 0
    plain = capsys.readouterr().out
    for kind in CACHE_KINDS:
        assert main([*common, "--cache", kind, "--cache-refresh", "1"]) == 0
        out = capsys.readouterr().out
        assert out.replace(f" cache={kind} cache_refresh=1", "") == plain  # the same samples, the cache named
        assert main([*common, "--cache", kind]) == 0
        assert f"cache={kind}" in capsys.readouterr().out
    assert main(["sample", "--checkpoint", path, "--num", "1", "--cache", "prefix"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "discrete-diff: error: --cache prefix decodes block by block: it needs the spans strategy"
    infill = ["infill", "--checkpoint", path, "--prompt", "Shall I [MASK:12] thee", *spans, "--cache", "dual"]
    assert main([*infill, "--guidance-scale", "1"]) == 2  # the unguided rows keep the prompt masked
    error = capsys.readouterr().err.strip()
    assert error == "discrete-diff: error: --cache dual cannot follow the spans when guidance hides the prompt"
    assert main(infill) == 0
    fill = capsys.readouterr().out.split(" ===\n", 1)[1]  # after the record's === header ===
    assert fill.startswith("Shall I ") and fill.endswith(" thee\n")
