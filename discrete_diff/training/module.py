"""The LightningModule: glue between a network, an objective and the Trainer. No maths lives here.

The network is built in `configure_model`, once the data module has read its data and knows the vocabulary;
the averaged weights (EMA) come from a callback the module configures itself, so one `ema_decay` setting is all
a config names. Training draws (masks, times) come from a generator the module owns and checkpoints, so a resumed
run repeats the uninterrupted one; a non-finite loss or weight stops training before any checkpoint holds it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, Timer
from torch import Tensor

from ..batch import Batch
from ..checkpoint_format import CHECKPOINT_KEY, FORMAT_VERSION
from ..domain import Domain
from ..errors import TrainingStopped, UserInputError
from ..inference import load_model
from ..labels import LabelVocabulary
from ..models import Transformer, TransformerConfig, describe_network
from ..models.pretrained import PretrainedMaskedLM, pretrained_denoiser
from ..objectives import MaskedDiffusion, Objective
from ..specs import to_spec
from ..tokenizer_io import tokenizer_to_dict
from .data import SequenceDataModule
from .ema import ExponentialMovingAverage
from .optimizer import OptimizerConfig, build_optimizer
from .random_state import STATE_KEY, TrainingDraws
from .resumable import CountTakenBatches


class DiffusionModule(L.LightningModule):
    """Trains a network with an objective; validates, checkpoints and samples with the EMA of its weights."""

    flops_per_batch: float | None = None
    """Read by Lightning's ThroughputMonitor: FLOPs are not counted (a CPU has no peak to compare them with)."""

    def __init__(
        self,
        network: TransformerConfig | PretrainedMaskedLM | None = None,
        objective: Objective | None = None,
        optimizer: OptimizerConfig | None = None,
        ema_decay: float | None = 0.995,
        init_from: str | None = None,
        label_dropout: float = 0.15,
    ) -> None:
        """ema_decay: decay of the weight average used for validation, checkpoints and sampling (None: no EMA).
        init_from: a checkpoint or model directory whose network weights start this run (e.g. an autoregressive
        model of the same shape continued with the diffusion objective).
        label_dropout: for a labelled data set, the probability that a training example's label is replaced by the
        null label, which trains the unconditional model classifier-free guidance steers away from (validation
        always sees the true labels)."""
        super().__init__()
        if not 0.0 <= label_dropout < 1.0:
            raise UserInputError(f"model.label_dropout must be in [0, 1), got {label_dropout}")
        self.objective = objective or MaskedDiffusion()
        self.network_config = network or TransformerConfig()
        if isinstance(self.network_config, PretrainedMaskedLM) and self.objective.needs_causal_attention:
            raise UserInputError(
                "model.network: a pretrained masked LM is bidirectional; it cannot be autoregressive "
                f"({type(self.objective).__name__} needs a discrete-diff Transformer)"
            )
        self.optimizer_config = optimizer or OptimizerConfig()
        self.ema_decay = ema_decay
        self.init_from = init_from
        self.label_dropout = label_dropout
        self.network: torch.nn.Module | None = None
        self.domain: Domain | None = None
        self.data_description: dict[str, Any] = {}
        self.draws = TrainingDraws()
        self._saved_step: int | None = None

    @property
    def mask_id(self) -> int:
        return self.domain.mask_id

    def configure_model(self) -> None:
        """Build the network for the data module's vocabulary (idempotent: Lightning and the EMA both call it)."""
        if self.network is not None:
            return
        datamodule = self.trainer.datamodule
        if not isinstance(datamodule, SequenceDataModule):
            raise UserInputError("training needs a discrete-diff data module (TextDataModule, ProteinDataModule)")
        self.domain = datamodule.domain
        tokenizer = self.domain.tokenizer
        labels = datamodule.label_vocabulary()
        if isinstance(self.network_config, PretrainedMaskedLM):
            if labels is not None:
                raise UserInputError(
                    "model.network: a pretrained masked LM takes no class labels; the data is labelled"
                )
            self.network = pretrained_denoiser(self.network_config, tokenizer)
        else:
            self.network = Transformer(self._with_labels(labels), vocab_size=len(tokenizer))
        if self.init_from is not None:
            self._start_from(self.init_from)

    def _with_labels(self, labels: LabelVocabulary | None) -> TransformerConfig:
        """The network config with one label embedding per label of the data (and the null label)."""
        count = 0 if labels is None else len(labels)
        if self.network_config.num_labels not in (0, count):
            raise UserInputError(
                f"model.network.num_labels={self.network_config.num_labels}, but the data has {count} labels "
                "(leave num_labels out: the data sets it)"
            )
        return dataclasses.replace(self.network_config, num_labels=count)

    def _start_from(self, path: str) -> None:
        """Copy another model's network weights into ours; shapes and vocabulary must match exactly."""
        source = load_model(path)
        if source.tokenizer.get_vocab() != self.domain.tokenizer.get_vocab():
            raise UserInputError(f"model.init_from {path}: its vocabulary differs from the data's")
        try:
            self.network.load_state_dict(source.network.state_dict())
        except RuntimeError as error:
            raise UserInputError(f"model.init_from {path}: {str(error).splitlines()[0]}") from None

    def configure_callbacks(self) -> list[Callback]:
        ema = [] if self.ema_decay is None else [ExponentialMovingAverage(self.ema_decay)]
        return [CountTakenBatches(), *ema]

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        self.draws.restore(self)  # a resumed run's saved random state, before its first step draws anything

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        batch = self._drop_labels(batch)
        loss = self.objective.loss(
            self.network, batch, self.mask_id, generator=self.draws.generator, progress=self._progress()
        )
        self._stop_unless_finite(loss.value)
        self.log("train/loss", loss.value, prog_bar=True)
        return loss.value

    def _drop_labels(self, batch: Batch) -> Batch:
        """Each label replaced by the null label with probability `label_dropout`, drawn from the training draws'
        generator (so a resumed run drops the same ones); a batch without labels draws nothing."""
        if batch.class_labels is None or not self.label_dropout:
            return batch
        generator = self.draws.generator
        drop = torch.rand(batch.size, generator=generator, device=generator.device) < self.label_dropout  # (B,)
        null = self.network.num_labels
        return dataclasses.replace(batch, class_labels=batch.class_labels.masked_fill(drop.to(self.device), null))

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        # Draws seeded by the batch's content: the number is the same whichever process sees a batch, in whatever
        # order, and the same batches get the same masks at every validation.
        generator = torch.Generator(device=self.device).manual_seed(content_seed(batch.input_ids))
        loss = self.objective.validation_loss(self.network, batch, self.mask_id, generator=generator)
        sums = torch.stack((loss.per_sequence.sum(), loss.scored_tokens.sum()))
        self.validation_totals += sums.to(self.validation_totals.dtype)

    def on_validation_epoch_start(self) -> None:
        exact = torch.float32 if self.device.type == "mps" else torch.float64  # MPS has no float64
        self.validation_totals = torch.zeros(2, dtype=exact, device=self.device)

    def on_validation_epoch_end(self) -> None:
        nats, tokens = self.trainer.strategy.reduce(self.validation_totals, reduce_op="sum")
        nats_per_token = nats / tokens.clamp_min(1)
        datamodule = self.trainer.datamodule
        # Every process now holds the total over all of them; sync_dist only says so to Lightning (its mean of
        # equal values is that value).
        self.log("val/nats_per_token", nats_per_token, sync_dist=True)
        self.log(
            f"val/bits_per_{self.domain.unit}",
            nats_per_token * datamodule.tokens_per_unit() / math.log(2),
            prog_bar=True,
            sync_dist=True,
        )

    def _stop_unless_finite(self, loss: Tensor) -> None:
        """Stop before a non-finite loss reaches the weights (on every process if any one sees it)."""
        bad = not bool(torch.isfinite(loss))
        if self.trainer.world_size > 1:
            bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise TrainingStopped(f"the loss is {loss.item()} at step {self.global_step}; {self._last_good()}")

    def _last_good(self) -> str:
        """Where training can go on from: the newest checkpoint written, or the one it resumed from."""
        written = {p for c in self.trainer.checkpoint_callbacks for p in (c.last_model_path, c.best_model_path) if p}
        written = {p for p in written if Path(p).is_file()}
        if written and self._saved_step is not None:
            newest = max(written, key=lambda p: Path(p).stat().st_mtime)
            return f"the last good checkpoint is {newest} (step {self._saved_step})"
        if self.trainer.ckpt_path:
            return f"the last good checkpoint is {self.trainer.ckpt_path}, which this run resumed from"
        return "no checkpoint was written before it"

    def configure_optimizers(self) -> Any:
        optimizer, schedule = build_optimizer(
            self.network,
            self.optimizer_config,
            int(self.trainer.estimated_stepping_batches),
            self._time_fraction,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _progress(self) -> float:
        """Share of the training budget spent: steps or wall-clock, whichever is further along."""
        steps = self.trainer.global_step / max(int(self.trainer.estimated_stepping_batches), 1)
        return min(1.0, max(steps, self._time_fraction()))

    def _time_fraction(self) -> float:
        """Share of `trainer.max_time` spent so far (0 without a time limit)."""
        timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None)
        if timer is None or timer.time_remaining() is None:
            return 0.0
        elapsed = timer.time_elapsed()
        return elapsed / max(elapsed + timer.time_remaining(), 1e-9)

    def on_fit_start(self) -> None:
        self.data_description = self.trainer.datamodule.description()
        self.draws.start(self)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for weights in ("state_dict", "current_model_state"):  # the EMA's callback saves both (it runs first)
            if not all(t.isfinite().all() for t in checkpoint.get(weights, {}).values() if t.is_floating_point()):
                raise TrainingStopped(
                    f"the weights are not finite at step {self.global_step} (not saved); {self._last_good()}"
                )
        if self.draws.generator is not None:  # saved while fitting (not by a bare trainer.save_checkpoint)
            checkpoint[STATE_KEY] = self.draws.save(self)
        for logger in self.loggers:  # the logs on disk reach at least as far as the checkpoint
            logger.save()
        self._saved_step = self.global_step
        checkpoint[CHECKPOINT_KEY] = {
            "format_version": FORMAT_VERSION,
            "tokenizer": tokenizer_to_dict(self.domain.tokenizer),
            "domain": self.domain.describe(),
            "network": describe_network(self.network),
            "objective": to_spec(self.objective),
            "ema_decay": self.ema_decay,
            "data": self.data_description,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.data_description = checkpoint.get(CHECKPOINT_KEY, {}).get("data", {})
        if STATE_KEY in checkpoint:
            self.draws.load(checkpoint[STATE_KEY])


def content_seed(ids: Tensor) -> int:
    """A seed that is a function of the token ids (B, L) alone."""
    weights = torch.arange(1, ids.numel() + 1, device=ids.device)  # position-weighted: order matters
    return int((ids.flatten().long() * weights).sum()) & (2**63 - 1)
