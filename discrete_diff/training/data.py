"""What every domain's data module provides to the one training loop: a domain (tokenizer inside) and batches.

Downloads and tokenizing happen in `prepare_data` (once per machine), reading in `setup` (every process); the
constructor only checks its arguments, so `--help`, `--print_config` and config errors never touch the data.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from transformers import PreTrainedTokenizerFast

from ..domain import Domain
from ..errors import UserInputError
from ..labels import LabelVocabulary
from .resumable import EpochBatches, EpochPlan, epoch_batches


def check_split_and_batch(val_fraction: float, batch_size: int) -> None:
    """The options every data module shares, each refused with one line naming it."""
    if not 0.0 < val_fraction < 1.0:
        raise UserInputError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
    if batch_size < 1:
        raise UserInputError(f"data.batch_size must be positive, got {batch_size}")


class SequenceDataModule(L.LightningDataModule):
    """Base of the domain data modules (text, proteins)."""

    @property
    def domain(self) -> Domain:
        """The kind of sequence, with the tokenizer the model's vocabulary follows (available after `setup`)."""
        raise NotImplementedError

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        return self.domain.tokenizer

    def tokens_per_unit(self) -> float:
        """Scored validation tokens per unit of the domain (character, residue), to turn nats/token into bits."""
        return 1.0

    def description(self) -> dict[str, Any]:
        """Plain-data facts the checkpoint keeps: the module's spec, the training window and lengths (and the
        label names, `labels.LABELS_KEY`, of a labelled set)."""
        return {}

    def label_vocabulary(self) -> LabelVocabulary | None:
        """The labels of a labelled data set (available after `setup`); None when its examples carry none."""
        return None

    def validation_batches(self, batch_size: int | None = None) -> torch.utils.data.DataLoader:
        """The validation set, deterministically ordered; `eval` uses it outside a Trainer."""
        raise NotImplementedError

    def shuffles_training(self) -> bool:
        """Training batches come in a fresh order each epoch, except when the Trainer overfits a few batches."""
        return self.trainer is None or not self.trainer.overfit_batches

    def run_seed(self) -> int:
        """The run's seed (`seed_everything`), the same on every process: it orders the training data."""
        seed = torch.initial_seed()
        if self.trainer is not None and self.trainer.world_size > 1:
            seed = self.trainer.strategy.broadcast(seed)  # without seed_everything each process has its own
        return seed

    def share(self, plan: EpochPlan, split: str, *, training: bool, seed: int = 0) -> EpochBatches:
        """This process's share of a split's batches: all of them outside a Trainer or in one process."""
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        sampler = epoch_batches(plan, seed=seed, rank=rank, world_size=world, even=training)
        if len(sampler) == 0:
            raise UserInputError(
                f"data: the {split} split makes {len(plan)} batches of data.batch_size, too few for {world} "
                "process(es); use a smaller data.batch_size or more data"
            )
        return sampler
