"""Block diffusion's k maskings per sequence over one clean stream equal k separate [x_t ; x_0] passes."""

import pytest
import torch
from conftest import sonnet_corpus
from toy import toy_batch

from discrete_diff.batch import Batch
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.denoiser import BlockCausal, DenoiserInput
from discrete_diff.errors import InvalidArgument
from discrete_diff.inference import load_model
from discrete_diff.models import Transformer, TransformerConfig
from discrete_diff.objectives import BlockDiffusion
from discrete_diff.schedules import LinearSchedule, training_interval

LENGTH = 150
"""More than two attention chunks, and not a multiple of 4, 8 or 16 (a partial last block)."""
VOCAB = 12
MASK_ID = VOCAB - 1
FP32 = {"rtol": 1e-5, "atol": 1e-5}
"""float32 tolerance: the shared pass sums the same scores in other chunks and orders."""


def network() -> Transformer:
    torch.manual_seed(0)
    config = TransformerConfig(d_model=32, n_layers=2, n_heads=4, max_length=LENGTH)
    return Transformer(config, VOCAB).eval()


def padded_batch() -> Batch:
    """Three sequences, the second ending 37 tokens early."""
    ids = torch.randint(0, MASK_ID, (3, LENGTH), generator=torch.Generator().manual_seed(1))
    real = torch.ones_like(ids, dtype=torch.bool)
    real[1, LENGTH - 37 :] = False
    return Batch(ids, real, real)


def masks(batch: Batch, copies: int, seed: int = 2) -> torch.Tensor:
    """(B k, L) a different masking of each copy, at rates 0.2 .. 0.8."""
    rates = torch.linspace(0.2, 0.8, batch.size * copies)[:, None]
    draw = torch.rand(batch.size * copies, LENGTH, generator=torch.Generator().manual_seed(seed)) < rates
    return draw & batch.maskable.repeat_interleave(copies, dim=0)


def scattered(logits: torch.Tensor, inputs: DenoiserInput) -> torch.Tensor:
    """(N, V) logits at `score_at` -> (B, S, V), zeros where nothing is scored."""
    full = logits.new_zeros(*inputs.score_at.shape, logits.shape[-1])
    full[inputs.score_at] = logits
    return full


@pytest.mark.parametrize("block_size", [1, 4, 8, 16, LENGTH])
def test_each_copy_gets_the_logits_of_its_own_pass(block_size):
    model, batch, copies = network(), padded_batch(), 2
    objective = BlockDiffusion(block_size)
    masked = masks(batch, copies)
    shared = objective.denoiser_input(batch, masked, MASK_ID)
    assert shared.ids.shape == (batch.size, (copies + 1) * LENGTH)
    with torch.no_grad():
        together = scattered(model(shared), shared)  # (B, 3L, V)
        for i in range(copies):
            alone = objective.denoiser_input(batch, masked[i::copies], MASK_ID)
            separate = scattered(model(alone), alone)[:, :LENGTH]  # (B, L, V)
            own = masked[i::copies]
            assert own.sum() > 100
            torch.testing.assert_close(together[:, i * LENGTH : (i + 1) * LENGTH][own], separate[own], **FP32)


def test_one_copy_is_the_two_stream_pass_it_always_was():
    """k = 1 builds exactly [x_t ; x_0] under the two-stream pattern, as block diffusion did before copies."""
    model, batch = network(), padded_batch()
    masked = masks(batch, 1)
    xt = batch.input_ids.masked_fill(masked, MASK_ID)
    reference = DenoiserInput(
        torch.cat((xt, batch.input_ids), dim=1),
        BlockCausal(4, torch.cat((batch.attention_mask, batch.attention_mask), dim=1)),
        positions=torch.arange(LENGTH).repeat(2),
        score_at=torch.cat((masked, torch.zeros_like(masked)), dim=1),
    )
    with torch.no_grad():
        assert torch.equal(model(BlockDiffusion(4).denoiser_input(batch, masked, MASK_ID)), model(reference))


@pytest.mark.parametrize("copies", [2, 3])
def test_the_loss_of_k_copies_is_the_mean_of_k_separate_losses_with_the_same_draws(copies):
    model, batch = network(), padded_batch()
    objective = BlockDiffusion(8, LinearSchedule(), maskings_per_sequence=copies)
    masked = masks(batch, copies, seed=3)
    t = torch.rand(batch.size * copies, objective.num_blocks(LENGTH), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        together = objective.loss_at(model, batch, t, MASK_ID, masked=masked)
        alone = [
            objective.loss_at(model, batch, t[i::copies], MASK_ID, masked=masked[i::copies]) for i in range(copies)
        ]
    assert together.per_sequence.shape == (batch.size * copies,)
    for i, loss in enumerate(alone):
        torch.testing.assert_close(together.per_sequence[i::copies], loss.per_sequence, **FP32)
        assert torch.equal(together.scored_tokens[i::copies], loss.scored_tokens)
    mean = torch.stack([loss.value for loss in alone]).mean()
    torch.testing.assert_close(together.value, mean, **FP32)


def test_training_times_stratify_every_copy_and_spread_each_sequence_copies():
    copies, batch = 4, toy_batch(torch.zeros(5, 12, dtype=torch.long))
    objective = BlockDiffusion(4, LinearSchedule(), maskings_per_sequence=copies)
    low, high = training_interval(objective.schedule, objective.t_min)
    times = objective.stratified(batch, low, high, torch.Generator().manual_seed(0))  # (B k, K)
    assert times.shape == (5 * copies, 3)
    gaps = times.sort(dim=0).values.diff(dim=0)  # one stratum per row across all B k rows
    torch.testing.assert_close(gaps, torch.full_like(gaps, (high - low) / (5 * copies)), rtol=0, atol=1e-5)
    spread = times.reshape(5, copies, 3).sort(dim=1).values.diff(dim=1)  # the copies of one sequence
    torch.testing.assert_close(spread, torch.full_like(spread, (high - low) / copies), rtol=0, atol=1e-5)


def test_training_and_evaluation_losses_score_every_copy_and_train_the_network():
    model, batch = network(), padded_batch()
    objective = BlockDiffusion(4, maskings_per_sequence=2)
    loss = objective.loss(model.train(), batch, MASK_ID, torch.Generator().manual_seed(5))
    assert loss.per_sequence.shape == (6,) and bool((loss.per_sequence > 0).all())
    loss.value.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.blocks.parameters())
    with torch.no_grad():
        bound = objective.loss(model.eval(), batch, MASK_ID, torch.Generator().manual_seed(6))
    assert bound.per_sequence.shape == (6,)
    assert torch.equal(bound.scored_tokens, batch.maskable.sum(-1).repeat_interleave(2))


def test_block_size_one_stays_exact_with_one_pass():
    model, batch = network(), padded_batch()
    with torch.no_grad():
        one = BlockDiffusion(1).loss(model, batch, MASK_ID)
        many = BlockDiffusion(1, maskings_per_sequence=3).loss(model, batch, MASK_ID)
    assert torch.equal(one.per_sequence, many.per_sequence) and many.per_sequence.shape == (3,)


def test_bad_copy_counts_are_one_line_errors():
    with pytest.raises(InvalidArgument, match="maskings_per_sequence must be at least 1"):
        BlockDiffusion(4, maskings_per_sequence=0)
    with pytest.raises(ValueError, match="not whole copies"):
        BlockDiffusion(4).block_nll(network(), padded_batch(), torch.zeros(4, LENGTH, dtype=torch.bool), MASK_ID)


def test_the_setting_travels_as_plain_data():
    from discrete_diff.objectives import Objective
    from discrete_diff.specs import build, to_spec

    spec = to_spec(BlockDiffusion(4, maskings_per_sequence=2))
    assert spec["init_args"]["maskings_per_sequence"] == 2
    assert build(spec, Objective).maskings_per_sequence == 2


@pytest.mark.slow
def test_the_command_line_trains_and_validates_with_two_maskings_per_sequence(tmp_path):
    """Through Lightning: training steps, validation (eval mode, B k rows) and the checkpoint keep the setting."""
    sonnet_corpus(tmp_path / "corpus")
    args = ["--config", "tiny", "--data.init_args.corpus", str(tmp_path / "corpus")]
    args += ["--model.objective", "discrete_diff.objectives.BlockDiffusion"]
    args += ["--model.objective.init_args.maskings_per_sequence", "2"]
    args += ["--trainer.logger.init_args.save_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.max_steps", "4", "--trainer.val_check_interval", "2"]
    cli = build_cli(args)
    fit(cli)
    metrics = cli.trainer.callback_metrics
    assert all(torch.isfinite(value) for value in metrics.values()) and any("val" in name for name in metrics)
    assert load_model(cli.trainer.checkpoint_callback.last_model_path).objective.maskings_per_sequence == 2
