"""The autoregressive baseline: exact next-token NLL, causality, key-value decoding, training and checkpoints."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import sonnet_corpus
from torch import nn

from discrete_diff.batch import Batch
from discrete_diff.cli import main
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.denoiser import Bidirectional, Causal, DenoiserInput, select_scored
from discrete_diff.generation import generate
from discrete_diff.inference import load_model
from discrete_diff.models import KVCache, Transformer, TransformerConfig
from discrete_diff.objectives import Autoregressive
from discrete_diff.sampling.autoregressive import generate_autoregressive
from discrete_diff.sampling.categorical import sample_categorical
from discrete_diff.sampling.filters import BanTokens, apply_filters

pytestmark = pytest.mark.slow  # trains models or runs subprocesses

MASK = 0


class Bigram(nn.Module):
    """logits at position i = table[token at i]: the NLL of a sequence can be written down by hand."""

    time_conditioned = False

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, inputs: DenoiserInput):
        return select_scored(self.table[inputs.ids], inputs)  # (B, L, V) or (N, V)


def tiny_network(seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    config = TransformerConfig(d_model=16, n_layers=2, n_heads=2, max_length=32)
    return Transformer(config, vocab_size=7).eval()


def causal(network, tokens, cache=None):
    with torch.no_grad():
        return network(DenoiserInput(tokens, Causal()), cache=cache)


def test_objective_equals_hand_computed_next_token_nll():
    table = torch.tensor([[0.0, 1.0, 2.0], [2.0, 0.0, 0.0], [0.5, 0.5, 3.0]])
    # The last token is special: not scored.
    batch = Batch(torch.tensor([[1, 2, 2]]), torch.ones(1, 3, dtype=torch.bool), torch.tensor([[True, True, False]]))

    def nll(row: int, token: int) -> float:
        logits = table[row].tolist()
        return -(logits[token] - math.log(sum(math.exp(v) for v in logits)))

    # x0 = 1 is predicted from the start symbol [MASK] (id 0); x1 = 2 from x0 = 1.
    expected = nll(MASK, 1) + nll(1, 2)
    loss, per_sequence, scored = Autoregressive().loss(Bigram(table), batch, MASK)
    assert per_sequence.item() == pytest.approx(expected, rel=1e-6)
    assert scored.tolist() == [2] and loss.item() == pytest.approx(expected / 2, rel=1e-6)


def test_causal_logits_ignore_later_tokens_and_bidirectional_ones_do_not():
    network = tiny_network()
    tokens = torch.randint(1, 7, (2, 12), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] % 6) + 1  # every token from position 6 on differs
    before, after = causal(network, tokens), causal(network, changed)
    assert torch.allclose(before[:, :6], after[:, :6], atol=1e-6)
    assert not torch.allclose(before[:, 6:], after[:, 6:], atol=1e-3)
    with torch.no_grad():  # the same weights, called with the bidirectional pattern
        seen = [network(DenoiserInput(x, Bidirectional()))[:, :6] for x in (tokens, changed)]
    assert not torch.allclose(*seen, atol=1e-3)


def test_kv_cache_logits_equal_full_recomputation():
    network = tiny_network()
    tokens = torch.randint(1, 7, (3, 20), generator=torch.Generator().manual_seed(2))
    full = causal(network, tokens)  # (B, L, V)
    cache = KVCache(len(network.blocks))
    pieces = [causal(network, tokens[:, :5], cache)]  # a 5-token prompt in one call, then one token per call
    pieces += [causal(network, tokens[:, i : i + 1], cache) for i in range(5, 20)]
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)
    assert cache.size == 20 and cache.next_position == 20


def test_kv_cache_generation_equals_full_recomputation():
    network = tiny_network(seed=3)
    prefix = torch.tensor([[MASK, 3], [MASK, 5]])
    filters = [BanTokens([MASK])]
    cached = generate_autoregressive(network, prefix, 15, filters=filters, generator=torch.Generator().manual_seed(4))
    generator, tokens = torch.Generator().manual_seed(4), prefix
    for _ in range(15):
        logits = causal(network, tokens)[:, -1:]  # (B, 1, V): the whole prefix recomputed every step
        tokens = torch.cat((tokens, sample_categorical(apply_filters(logits, filters), generator)), dim=1)
    assert torch.equal(cached.tokens, tokens[:, 2:])
    assert cached.network_calls == 15 and not (cached.tokens == MASK).any()


def test_decoding_past_the_trained_length_is_refused():
    with pytest.raises(ValueError, match="max_length"):
        generate_autoregressive(tiny_network(), torch.tensor([[MASK]]), 33)


@pytest.fixture(scope="module")
def trained_ar(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    sonnet_corpus(corpus)
    out = tmp_path_factory.mktemp("run")
    args = ["--config", "tiny", "--data.init_args.corpus", str(corpus)]
    args += ["--model.objective", "discrete_diff.objectives.Autoregressive"]
    args += ["--trainer.logger.init_args.save_dir", str(out), "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.max_steps", "60", "--trainer.val_check_interval", "30"]
    cli = build_cli(args)
    fit(cli)
    return cli, out


def logged(out: Path, key: str) -> list[float]:
    rows = [row for f in sorted(out.rglob("metrics.csv")) for row in csv.DictReader(open(f))]
    return [float(r[key]) for r in rows if r.get(key)]


def test_tiny_ar_model_trains(trained_ar):
    cli, out = trained_ar
    assert isinstance(cli.model.objective, Autoregressive)
    losses = logged(out, "train/loss")
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3
    val = logged(out, "val/bits_per_character")
    assert len(val) == 2 and val[1] < val[0]


def test_ar_checkpoint_loads_and_evaluates_exactly(trained_ar, capsys):
    cli, out = trained_ar
    path = cli.trainer.checkpoint_callback.last_model_path
    model = load_model(path)
    assert isinstance(model.objective, Autoregressive)
    tokens = torch.randint(1, len(model.tokenizer), (2, 16), generator=torch.Generator().manual_seed(0))
    assert torch.equal(causal(model.network, tokens), causal(cli.model.network.eval(), tokens))
    # tiny.yaml validates 2 batches of 8: `eval` over the same blocks must give the Trainer's last number.
    arguments = ["--json", "--batch-size", "8", "--max-batches", "2", "--use-recorded-data"]
    assert main(["eval", "--checkpoint", path, *arguments]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["exact"] and result["standard_error"] == 0.0
    assert result["bits_per_character"] == pytest.approx(logged(out, "val/bits_per_character")[-1], rel=1e-4)


def test_ar_checkpoint_samples_left_to_right_with_one_call_per_token(trained_ar):
    cli, _ = trained_ar
    model = load_model(cli.trainer.checkpoint_callback.last_model_path)
    run = generate(model, [24] * 3, seed=0)
    assert [len(ids) for ids in run.ids] == [24] * 3
    assert run.network_calls == 24  # KV cache: the start symbol's call, then one per new token
    banned = set(model.domain.banned_ids(document_breaks=True))
    assert not banned & {token for ids in run.ids for token in ids}
    assert generate(model, [24] * 3, seed=0).ids == run.ids


@pytest.mark.parametrize("flags", [["--strategy", "confidence"], ["--steps", "16"], ["--remask-eta", "0.1"]])
def test_sampling_options_that_do_not_apply_to_an_ar_model_are_refused(trained_ar, capsys, flags):
    cli, _ = trained_ar
    path = cli.trainer.checkpoint_callback.last_model_path
    assert main(["sample", "--checkpoint", path, "--num", "1", "--length", "8", *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("discrete-diff: error: ")
    assert ("does not apply to an autoregressive model" in error) or ("applies to --strategy remasking" in error)


def test_logit_filters_do_apply_to_an_ar_model(trained_ar, capsys):
    cli, _ = trained_ar
    path = cli.trainer.checkpoint_callback.last_model_path
    assert main(["sample", "--checkpoint", path, "--num", "2", "--length", "8", "--top-k", "1", "--seed", "1"]) == 0
    greedy = capsys.readouterr().out
    assert main(["sample", "--checkpoint", path, "--num", "2", "--length", "8", "--top-k", "1", "--seed", "2"]) == 0
    assert capsys.readouterr().out.replace("seed=2", "seed=1") == greedy  # top-1 leaves nothing to chance
