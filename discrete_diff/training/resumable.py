"""Training data that knows its place, so a run killed mid-epoch resumes with the very batch it would have taken.

Each epoch's batches come from a plan seeded by (seed, epoch); a checkpoint records the seed, the epoch and how
many of the epoch's batches the model has taken. Lightning saves the `state_dict` of a train loader that has one
(its `_Stateful` protocol) with its loops, and hands it back on resume. The count is kept by `CountTakenBatches`
as the model takes each batch: the loader itself cannot count, since Lightning fetches a batch ahead of the one it
trains on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, SequentialSampler


class EpochPlan(Protocol):
    """Every batch of an epoch, in the order one process takes them; the same number of batches every epoch."""

    shuffle: bool
    """Whether epochs differ (else every epoch is the same pass in order)."""

    def __len__(self) -> int: ...

    def batches(self, seed: int, epoch: int) -> Sequence[Any]:
        """A sequence of batches, each a list (or a 1-D tensor) of dataset keys."""


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator for one epoch's draws; distinct for every (seed, epoch) pair."""
    return torch.Generator().manual_seed(hash((seed, epoch)) & (2**63 - 1))  # hash of ints: fixed across runs


class IndexBatches:
    """`count` items in batches of `batch_size`: a fresh permutation each epoch with `shuffle` (the incomplete last
    batch dropped), else in order (the last batch kept)."""

    def __init__(self, count: int, batch_size: int, shuffle: bool) -> None:
        self.count, self.batch_size, self.shuffle = count, batch_size, shuffle

    def __len__(self) -> int:
        return self.count // self.batch_size if self.shuffle else math.ceil(self.count / self.batch_size)

    def batches(self, seed: int, epoch: int) -> Sequence[Tensor]:
        if not self.shuffle:
            return torch.arange(self.count).split(self.batch_size)
        order = torch.randperm(self.count, generator=epoch_generator(seed, epoch))
        return order[: len(self) * self.batch_size].view(len(self), self.batch_size)  # (N, B): no per-item lists


class EpochBatches(DistributedSampler):
    """One process's share of each epoch's batches, from the position the model has reached; resumable.

    With `world_size` processes, process `rank` takes batches rank, rank + W, rank + 2W, ... of the plan, so the
    processes together see exactly the batches one process would. Training (`even`) gives every process the same
    number, so their gradient all-reduces pair up. A DistributedSampler by type only: Lightning then leaves the
    sharding to it instead of putting its own sampler in the loader.
    """

    def __init__(self, plan: EpochPlan, *, seed: int, rank: int = 0, world_size: int = 1, even: bool = True) -> None:
        # DistributedSampler.__init__ is not called: it would need a dataset and a process group.
        self.plan, self.seed, self.rank, self.num_replicas, self.even = plan, seed, rank, world_size, even
        self.shuffle, self.drop_last = even, even
        self.epoch = 0
        self.position = 0
        """Batches of this epoch the model has taken (see `CountTakenBatches`)."""

    def __len__(self) -> int:
        total = len(self.plan) // self.num_replicas * self.num_replicas if self.even else len(self.plan)
        return len(range(self.rank, total, self.num_replicas))

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.position = epoch, 0

    def take(self) -> None:
        """The model took one more batch of this epoch."""
        self.position += 1

    def __iter__(self) -> Iterator[list[Any]]:
        batches = self.plan.batches(self.seed, self.epoch)
        mine = range(self.rank, self.rank + len(self) * self.num_replicas, self.num_replicas)
        for index in mine[self.position :]:
            batch = batches[index]
            yield batch.tolist() if isinstance(batch, Tensor) else list(batch)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch, self.position = state["seed"], state["epoch"], state["position"]
        if self.position >= len(self):  # saved after the epoch's last batch: the next epoch comes next
            self.epoch, self.position = self.epoch + 1, 0


class InOrderBatches(EpochBatches, SequentialSampler):
    """EpochBatches of a plan without shuffling, typed as sequential too: Lightning's `overfit_batches` then keeps
    it instead of putting a SequentialSampler of single items in its place."""


def epoch_batches(plan: EpochPlan, *, seed: int, rank: int, world_size: int, even: bool) -> EpochBatches:
    sampler = EpochBatches if plan.shuffle else InOrderBatches
    return sampler(plan, seed=seed, rank=rank, world_size=world_size, even=even)


class BatchesOf(Dataset):
    """A dataset whose item is a whole batch: `dataset[key]` for every key the sampler put in it."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __getitem__(self, keys: list[Any]) -> list[Any]:
        return [self.dataset[key] for key in keys]


class ResumableLoader(DataLoader):
    """A DataLoader of `EpochBatches` whose place in the data is saved in checkpoints (Lightning's `_Stateful`)."""

    sampler: EpochBatches

    def state_dict(self) -> dict[str, int]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.load_state_dict(state)


def resumable_loader(
    dataset: Dataset, sampler: EpochBatches, collate: Callable[[list[Any]], Any], num_workers: int = 0
) -> ResumableLoader:
    """Batches of `dataset` as `sampler` lists them, collated by `collate`. The loader's own generator (only used
    to seed workers) keeps iteration from drawing on the global random state, which dropout reads."""
    return ResumableLoader(
        BatchesOf(dataset),
        batch_size=None,
        sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        generator=torch.Generator(),
    )


class CountTakenBatches(Callback):
    """Moves the train loader's position on as the model takes each batch (Lightning fetches one ahead)."""

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        sampler = getattr(trainer.train_dataloader, "sampler", None)
        if isinstance(sampler, EpochBatches):
            sampler.take()
