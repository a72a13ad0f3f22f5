"""`discrete-diff distill --teacher CKPT_OR_DIR --config NAME_OR_PATH [--key value ...] [--ckpt_path LAST.ckpt]`.

Self-distillation through time with `train`'s machinery (LightningCLI, Trainer, logging, checkpoints, resume): a
student initialised from the teacher learns in one sampler step what the teacher does in two, over rounds that halve
the step count (`model.start_steps` -> `model.final_steps`). Its checkpoints sample with the distilled step count by
default. Settings: `discrete_diff.training.distillation.DistillationModule`; configs: `--config distill/NAME`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning.pytorch.cli import LightningArgumentParser

from ..errors import UserInputError
from ..training.distillation import DistillationModule
from .train import TrainCLI, build_cli, fit

NAME = "distill"
HELP = "distil a masked or uniform-state diffusion checkpoint into a student that samples in few steps (LightningCLI)"
PASSTHROUGH = True
LIGHTNING_HELP = True
"""Every argument after `distill` goes to LightningCLI, `--help` included."""


class DistillCLI(TrainCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--teacher", type=str, required=True, help="the teacher: a .ckpt or an exported directory")
        parser.link_arguments("teacher", "model.teacher")

    def before_instantiate_classes(self) -> None:
        super().before_instantiate_classes()
        teacher = self.config.get("teacher")
        if not Path(teacher).expanduser().exists():
            raise UserInputError(f"--teacher {teacher}: no checkpoint or model directory there")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(passthrough=[])


def run(args: argparse.Namespace) -> int:
    fit(build_cli(args.passthrough, cli_class=DistillCLI, model_class=DistillationModule, prog="discrete-diff distill"))
    return 0
