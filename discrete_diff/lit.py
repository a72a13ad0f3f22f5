"""The LightningModule: glue between a network, an objective and the Trainer. No maths lives here."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer
from torch import Tensor
from transformers import PreTrainedTokenizerFast

from .data import Batch
from .ema import ema_model
from .errors import UserInputError
from .hf.adapter import MaskedLMAdapter, PretrainedMaskedLM, pretrained_denoiser
from .models.transformer import Transformer, TransformerConfig
from .objectives import MaskedDiffusion, Objective
from .optim import OptimizerConfig, build_optimizer
from .specs import to_spec
from .tokenizer_io import tokenizer_to_dict

CHECKPOINT_KEY = "discrete_diff"
"""The checkpoint entry holding, as plain data, everything needed to rebuild the model without pickles."""


class DiffusionModule(L.LightningModule):
    """Trains `network` with `objective`; validates and samples with the EMA of its weights."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerFast,
        network: TransformerConfig | PretrainedMaskedLM | None = None,
        objective: Objective | None = None,
        optimizer: OptimizerConfig | None = None,
        ema_decay: float = 0.999,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.objective = objective or MaskedDiffusion()
        self.network_config = network or TransformerConfig()
        self.optimizer_config = optimizer or OptimizerConfig()
        if isinstance(self.network_config, PretrainedMaskedLM):  # fine-tuning a transformers masked LM
            if self.objective.causal:
                raise UserInputError("model.network: a pretrained masked LM is bidirectional; it cannot be causal")
            self.network = pretrained_denoiser(self.network_config, tokenizer)
        else:
            self.network_config.causal = self.objective.causal
            self.network = Transformer(self.network_config, vocab_size=len(tokenizer))
        self.ema = ema_model(self.network, ema_decay).requires_grad_(False)
        self.ema_decay = ema_decay
        self.mask_id = tokenizer.mask_token_id
        self.data_description: dict[str, Any] = {}

    @property
    def eval_network(self) -> torch.nn.Module:
        return self.ema.module

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss, _, _ = self.objective.loss(self.network, batch, self.mask_id)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        self.ema.update_parameters(self.network)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, nats, tokens = self.objective.loss(self.eval_network, batch, self.mask_id)
        self.validation_totals += torch.stack((nats.sum(), tokens.sum().float()))

    def on_validation_epoch_start(self) -> None:
        self.validation_totals = torch.zeros(2, device=self.device)

    def on_validation_epoch_end(self) -> None:
        nats, tokens = self.trainer.strategy.reduce(self.validation_totals, reduce_op="sum")
        nats_per_token = nats / tokens.clamp_min(1)
        per_char = self.trainer.datamodule.tokens_per_character() if self.trainer.datamodule else 1.0
        self.log("val/nats_per_token", nats_per_token, sync_dist=False)
        self.log("val/bits_per_char", nats_per_token * per_char / math.log(2), prog_bar=True, sync_dist=False)

    def configure_optimizers(self) -> Any:
        optimizer, schedule = build_optimizer(
            self.network,
            self.optimizer_config,
            int(self.trainer.estimated_stepping_batches),
            self._time_fraction,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _time_fraction(self) -> float:
        """Share of `trainer.max_time` spent so far (0 without a time limit)."""
        timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None)
        if timer is None or timer.time_remaining() is None:
            return 0.0
        elapsed = timer.time_elapsed()
        return elapsed / max(elapsed + timer.time_remaining(), 1e-9)

    def on_fit_start(self) -> None:
        datamodule = self.trainer.datamodule
        self.data_description = datamodule.description() if datamodule else {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "tokenizer": tokenizer_to_dict(self.tokenizer),
            "network": (
                self.network.describe() if isinstance(self.network, MaskedLMAdapter) else asdict(self.network_config)
            ),
            "objective": to_spec(self.objective),
            "optimizer": asdict(self.optimizer_config),
            "ema_decay": self.ema_decay,
            "data": self.data_description,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.data_description = checkpoint.get(CHECKPOINT_KEY, {}).get("data", {})
