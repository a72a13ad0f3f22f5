"""Training data that knows its place: seeded epoch plans, shared between processes without overlap, resumed from
the batch a checkpoint recorded."""

import pytest

from discrete_diff.commands.train import build_cli, fit
from discrete_diff.errors import UserInputError
from discrete_diff.training.resumable import EpochBatches, IndexBatches
from discrete_diff.training.text_data import TextDataModule


def drawn(sampler: EpochBatches, take: int | None = None) -> list[list[int]]:
    """The batches one pass yields, each taken by the model (as Lightning's loop would count them)."""
    batches = []
    for batch in sampler:
        if take is not None and len(batches) == take:
            break
        sampler.take()
        batches.append(batch)
    return batches


def test_each_epoch_is_a_fresh_permutation_fixed_by_seed_and_epoch():
    plan = IndexBatches(50, batch_size=8, shuffle=True)
    epochs = [[i for batch in plan.batches(seed=3, epoch=e).tolist() for i in batch] for e in range(3)]
    assert all(len(set(items)) == 48 for items in epochs) and len(plan) == 6  # the incomplete batch is dropped
    assert epochs[0] != epochs[1] != epochs[2]
    assert plan.batches(seed=3, epoch=1).tolist() == plan.batches(seed=3, epoch=1).tolist()
    assert plan.batches(seed=4, epoch=1).tolist() != plan.batches(seed=3, epoch=1).tolist()
    in_order = IndexBatches(50, batch_size=8, shuffle=False)
    assert [i for batch in in_order.batches(0, 0) for i in batch.tolist()] == list(range(50)) and len(in_order) == 7


@pytest.mark.parametrize("training, world_size", [(True, 2), (True, 3), (False, 2), (False, 3)])
def test_processes_share_the_single_process_batches_without_overlap(training, world_size):
    plan = IndexBatches(61, batch_size=4, shuffle=training)
    alone = drawn(EpochBatches(plan, seed=0, even=training))
    processes = [EpochBatches(plan, seed=0, rank=r, world_size=world_size, even=training) for r in range(world_size)]
    shares = [drawn(process) for process in processes]
    together = [batch for share in shares for batch in share]
    assert sorted(map(tuple, together)) == sorted(map(tuple, alone[: len(together)]))
    if training:  # the same number of steps on every process; at most world_size - 1 batches left out
        assert len({len(share) for share in shares}) == 1 and len(alone) - len(together) < world_size
    else:
        assert len(together) == len(alone) == 16


def test_a_sampler_loaded_mid_epoch_yields_exactly_the_rest():
    plan = IndexBatches(40, batch_size=4, shuffle=True)
    uninterrupted = EpochBatches(plan, seed=7)
    uninterrupted.set_epoch(2)
    whole = drawn(uninterrupted)
    interrupted = EpochBatches(plan, seed=7)
    interrupted.set_epoch(2)
    drawn(interrupted, take=6)
    state = interrupted.state_dict()
    assert state == {"seed": 7, "epoch": 2, "position": 6}
    resumed = EpochBatches(plan, seed=0)  # a resumed run may not know the seed: the checkpoint does
    resumed.load_state_dict(state)
    assert drawn(resumed) == whole[6:]
    resumed.set_epoch(3)  # the loop moves on: the next epoch starts at its first batch
    fresh = EpochBatches(plan, seed=7)
    fresh.set_epoch(3)
    assert drawn(resumed) == drawn(fresh)


def test_a_checkpoint_after_an_epochs_last_batch_resumes_with_the_next_epoch():
    plan = IndexBatches(40, batch_size=4, shuffle=True)
    resumed = EpochBatches(plan, seed=1)
    resumed.load_state_dict({"seed": 1, "epoch": 0, "position": 10})
    assert resumed.state_dict() == {"seed": 1, "epoch": 1, "position": 0}
    assert drawn(resumed) == plan.batches(1, 1).tolist()


def test_a_split_too_small_for_one_batch_is_a_user_error(small_corpus):
    data = TextDataModule(str(small_corpus), max_length=64, batch_size=10_000)
    data.prepare_data()
    data.setup("fit")
    with pytest.raises(UserInputError, match="the train split makes 0 batches of data.batch_size, too few for 1"):
        data.train_dataloader()
    assert len(data.val_dataloader()) == 1  # validation keeps its incomplete batch


def test_overfitting_a_few_batches_takes_them_in_order(small_corpus, tmp_path):
    """Lightning's overfit_batches keeps an in-order sampler: the loop repeats the first batches of the split."""
    cli = build_cli(
        ["--config", "tiny", "--data.init_args.corpus", str(small_corpus),
         "--trainer.logger.init_args.save_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
         "--trainer.overfit_batches", "2", "--trainer.max_steps", "4"]
    )  # fmt: skip
    fit(cli)
    plan = cli.trainer.train_dataloader.sampler.plan
    assert cli.trainer.global_step == 4 and cli.trainer.num_training_batches == 2 and not plan.shuffle
    assert [batch.tolist() for batch in plan.batches(seed=0, epoch=1)[:2]] == [list(range(8)), list(range(8, 16))]
