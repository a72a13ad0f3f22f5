"""Distillation in the one training loop: a student, initialised from the teacher, learns its two steps in one.

The run is split into rounds of equal length (`trainer.max_steps` / rounds). Round r trains the student for
start_steps / 2^(r+1) sampler steps against a frozen teacher at twice as many; at the end of a round the student
(its averaged weights, when an EMA is kept) becomes the next round's teacher and starting point, a checkpoint
`student-{steps}-steps.ckpt` is written beside the others, and the learning rate warms up and decays afresh. Every
checkpoint records, as plain data, the step count its student was distilled for (`data.sampling_steps`), which
sampling then uses by default. The maths is in `objectives/distillation.py`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..batch import Batch
from ..checkpoint_format import CHECKPOINT_KEY
from ..errors import UserInputError
from ..inference import TrainedModel, load_model
from ..models import Transformer, TransformerConfig, describe_network, with_time_embedding
from ..models.pretrained import PretrainedMaskedLM
from ..objectives import Objective
from ..objectives.distillation import StepDistillation, StepProcess, step_process
from ..specs import to_spec
from .data import SequenceDataModule
from .ema import ExponentialMovingAverage
from .module import DiffusionModule
from .optimizer import OptimizerConfig, build_optimizer

STATE_KEY = "distillation_state"
"""Checkpoint entry with what resuming needs: the round, its teacher's weights (tensors) and the round times."""


class FrozenTeacher:
    """The teacher, kept outside the module tree: not trained, not averaged, not in the state_dict, and shared
    rather than copied when the EMA callback deep-copies the module."""

    def __init__(self, network: nn.Module | None) -> None:
        self.network = network

    def __deepcopy__(self, memo: dict) -> FrozenTeacher:
        return self


def round_count(start_steps: int, final_steps: int) -> int:
    """How many halvings lead from the teacher's step count to the student's (at least one)."""
    rounds = math.log2(start_steps / final_steps) if min(start_steps, final_steps) >= 1 else 0.0
    if rounds < 1 or not rounds.is_integer():
        raise UserInputError(
            f"model.final_steps {final_steps}: the teacher's {start_steps} steps must halve to it in whole rounds "
            "(start_steps = final_steps x 2^rounds)"
        )
    return int(rounds)


class DistillationModule(DiffusionModule):
    """Self-distillation through time, round after round (module docstring); validation reports the student's
    NELBO, as training does."""

    def __init__(
        self,
        teacher: str,
        start_steps: int | None = None,
        final_steps: int = 8,
        divergence: str = "reverse-kl",
        network: TransformerConfig | PretrainedMaskedLM | None = None,
        objective: Objective | None = None,
        optimizer: OptimizerConfig | None = None,
        ema_decay: float | None = 0.995,
        student_time_conditioning: bool = False,
    ) -> None:
        """Settings of a distillation run.

        Args:
            teacher: the teacher, a checkpoint or an exported model directory (`--teacher`).
            start_steps: the teacher's step count (default: the count it records, else the sampling default).
            final_steps: the last student's step count; start_steps / final_steps must be a power of 2.
            divergence: reverse-kl (as in SDTT), forward-kl, total-variation or mse-log-probs.
            network: leave out: the student has the teacher's network (a config may only repeat it).
            objective: leave out: the student keeps the teacher's objective (a config may only repeat it).
            optimizer: AdamW settings; the warm-up and cosine restart at every round.
            ema_decay: decay of the weight average (None: none); each round's average becomes the next teacher.
            student_time_conditioning: give a time-independent teacher's student a time embedding of its own (zero
                at the start: the student starts as the teacher), so that its jumps can depend on where in the run
                they are; the student is then called at every sampling step.
        """
        super().__init__(network, objective, optimizer, ema_decay)
        self.teacher_path = teacher
        self.given = {"network": network, "objective": objective}
        self.start_steps = start_steps
        self.final_steps = final_steps
        self.student_time_conditioning = student_time_conditioning
        if start_steps is not None:
            round_count(start_steps, final_steps)
        self.distillation = StepDistillation(divergence)
        self.teacher = FrozenTeacher(None)
        self.process: StepProcess | None = None
        self.rounds = 0
        self.round = 0
        self.round_seconds: list[float] = []
        self._round_started = 0.0

    @property
    def student_steps(self) -> int:
        return self.start_steps >> (self.round + 1)

    def configure_model(self) -> None:
        """The student is the teacher's network, trained; the teacher a frozen copy (idempotent)."""
        if self.network is not None:
            return
        datamodule = self.trainer.datamodule
        if not isinstance(datamodule, SequenceDataModule):
            raise UserInputError("distillation needs a discrete-diff data module (TextDataModule, ProteinDataModule)")
        teacher = self._load_teacher(datamodule)
        self.process = step_process(teacher.objective, teacher.process)
        self.start_steps = self.start_steps or teacher.default_settings().steps
        self.rounds = round_count(self.start_steps, self.final_steps)
        self.domain, self.objective = datamodule.domain, teacher.objective
        network = self._student_network(teacher.network)
        self.network = network.train().requires_grad_(True)
        self.teacher = FrozenTeacher(copy.deepcopy(network).eval().requires_grad_(False))

    def _student_network(self, network: nn.Module) -> nn.Module:
        """The teacher's network, given its own time embedding if asked (the round's teacher gets the same: zero, it
        changes nothing, and every round's teacher is then the last round's student, weight for weight)."""
        if not self.student_time_conditioning or getattr(network, "time_conditioned", False):
            return network
        if not isinstance(network, Transformer):
            raise UserInputError(
                f"model.student_time_conditioning: a {type(network).__name__} teacher takes no time embedding"
            )
        return with_time_embedding(network)

    def _load_teacher(self, datamodule: SequenceDataModule) -> TrainedModel:
        try:
            teacher = load_model(self.teacher_path)
        except UserInputError as error:
            raise UserInputError(f"--teacher {error}") from None
        where = f"--teacher {self.teacher_path}"
        if teacher.domain.name != datamodule.domain.name:
            raise UserInputError(f"{where}: a {teacher.domain.name} model, but the data is {datamodule.domain.name}")
        if teacher.tokenizer.get_vocab() != datamodule.tokenizer.get_vocab():
            raise UserInputError(
                f"{where}: its vocabulary ({len(teacher.tokenizer)} tokens) is not the data's "
                f"({len(datamodule.tokenizer)}): distil on data tokenized as the teacher's was"
            )
        network, objective = self.given["network"], self.given["objective"]
        if network is not None and not (
            isinstance(network, TransformerConfig) and asdict(network) == describe_network(teacher.network)
        ):
            raise UserInputError("model.network differs from the teacher's: a student has its teacher's network")
        if objective is not None and to_spec(objective) != to_spec(teacher.objective):
            raise UserInputError("model.objective differs from the teacher's: a student keeps its teacher's objective")
        return teacher

    def round_bounds(self, step: int) -> tuple[int, int, int]:
        """(round, its first step, its length) of optimizer step `step`: rounds share max_steps evenly."""
        total = self.trainer.max_steps
        if total is None or total < self.rounds:
            raise UserInputError(
                f"trainer.max_steps {total}: distillation from {self.start_steps} to {self.final_steps} steps takes "
                f"{self.rounds} rounds, which share max_steps; give at least {self.rounds}"
            )
        current = min(self.rounds - 1, sum(step >= (r + 1) * total // self.rounds for r in range(self.rounds)))
        start = current * total // self.rounds
        return current, start, (current + 1) * total // self.rounds - start

    def configure_optimizers(self) -> Any:
        """AdamW with warm-up and cosine decay restarted at every round."""
        _, _, length = self.round_bounds(0)
        optimizer, schedule = build_optimizer(self.network, self.optimizer_config, length)
        within = schedule.lr_lambdas[0]
        restarted = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: within(step - self.round_bounds(step)[1]))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": restarted, "interval": "step"}}

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.teacher.network.to(self.device)
        self._round_started = time.perf_counter()

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        due = self.round_bounds(self.global_step)[0]
        if due != self.round:
            ema = next((c for c in self.trainer.callbacks if isinstance(c, ExponentialMovingAverage)), None)
            if ema is not None:
                ema.restart_from_average(self)
            self.teacher.network.load_state_dict(self.network.state_dict())
            self.round = due

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss = self.distillation.loss(
            self.network, self.teacher.network, batch, process=self.process, student_steps=self.student_steps
        )
        self.log("train/loss", loss.value, prog_bar=True)
        self.log("distill/student_steps", float(self.student_steps))
        return loss.value

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        """At a round's end (after the EMA's update): its time, and its student as a checkpoint of its own."""
        current, start, length = self.round_bounds(self.global_step - 1)
        if self.global_step != start + length:
            return
        self.round_seconds.append(time.perf_counter() - self._round_started)
        for logger in self.loggers:  # once per round (self.log would repeat the value at every later step)
            logger.log_metrics({"distill/round_seconds": self.round_seconds[-1]}, step=self.global_step - 1)
        self._round_started = time.perf_counter()
        path = self._checkpoint_dir() / f"student-{self.student_steps}-steps.ckpt"
        self.trainer.save_checkpoint(path, weights_only=False)

    def _checkpoint_dir(self) -> Path:
        callback = self.trainer.checkpoint_callback
        if callback is not None and callback.dirpath:
            return Path(callback.dirpath)
        return Path(self.trainer.log_dir or self.trainer.default_root_dir) / "checkpoints"

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        meta = checkpoint[CHECKPOINT_KEY]
        meta["data"] = {
            **meta["data"],
            "sampling_steps": self.student_steps,
            "distillation": {
                "teacher": str(self.teacher_path),
                "teacher_steps": self.start_steps,
                "round": self.round + 1,
                "rounds": self.rounds,
                "divergence": self.distillation.divergence,
                "round_seconds": list(self.round_seconds),
            },
        }
        checkpoint[STATE_KEY] = {
            "round": self.round,
            "round_seconds": list(self.round_seconds),
            "teacher": {key: value.detach().cpu() for key, value in self.teacher.network.state_dict().items()},
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get(STATE_KEY)
        if state is None:
            raise UserInputError("--ckpt_path: not a distillation checkpoint (it holds no teacher to resume with)")
        self.round, self.round_seconds = state["round"], list(state["round_seconds"])
        self.teacher.network.load_state_dict(state["teacher"])
