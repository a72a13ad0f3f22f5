"""`discrete-diff train --config NAME_OR_PATH [--key value ...] [--ckpt_path LAST.ckpt]`: LightningCLI training."""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

from lightning.pytorch.callbacks import ThroughputMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger

from ..batch import Batch
from ..errors import UserInputError
from ..inference import read_checkpoint
from ..training.data import SequenceDataModule
from ..training.module import DiffusionModule
from ..training.precision import fastest_precision
from ..training.resume import carry_over_metrics, run_folder_version
from .config_files import expand_config_args

NAME = "train"
HELP = "train a model from a YAML config (LightningCLI: any Trainer, model or data option can be overridden)"
PASSTHROUGH = True
LIGHTNING_HELP = True
"""Every argument after `train` goes to LightningCLI, `--help` included."""


def batch_rows(batch: Batch) -> int:
    return batch.size


def batch_tokens(batch: Batch) -> int:
    """Tokens a step trains on, padding excluded: logged as train/items_per_sec."""
    return int(batch.attention_mask.sum())


class StartupNoise(logging.Filter):
    """Lightning's start-up lines about absent accelerators and a cloud logger tell a CPU user nothing and would
    stand between them and a one-line data error (data is first read once the Trainer exists)."""

    PREFIXES = ("GPU available:", "TPU available:", "\N{ELECTRIC LIGHT BULB} Tip:")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.PREFIXES)


class TrainCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--ckpt_path", type=str | None, default=None, help="resume training from this checkpoint")

    def before_instantiate_classes(self) -> None:
        """Check the resume path before building anything, so the error is the only thing printed; a run resumed
        from a checkpoint in its own log folder logs on into that folder."""
        resume = self.config.get("ckpt_path")
        if not resume:
            return
        if not Path(resume).is_file():
            raise UserInputError(f"--ckpt_path {resume}: checkpoint not found")
        logger = getattr(self.config.get("trainer"), "logger", None)
        init = getattr(logger, "init_args", None)
        if init is not None and "save_dir" in init and "version" in init and init.version is None:
            init.version = run_folder_version(resume, init.save_dir, init.get("name"))


def build_cli(
    args: list[str],
    *,
    cli_class: type[TrainCLI] = TrainCLI,
    model_class: type[DiffusionModule] = DiffusionModule,
    prog: str = "discrete-diff train",
) -> TrainCLI:
    """Parse and instantiate (model, data, trainer) without running; raises ArgumentError on bad config.

    Each `--config` is a packaged config's name or a path, composed from its includes (config_files).
    `distill` passes its own CLI and module classes: one parser, one Trainer set-up, one loop for both."""
    # The seed is in the config; its log line would only stand between a user and an error message.
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, StartupNoise) for f in rank_zero.filters):
        rank_zero.addFilter(StartupNoise())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return cli_class(
            model_class=model_class,
            datamodule_class=SequenceDataModule,
            subclass_mode_data=True,
            args=expand_config_args(args),
            run=False,
            parser_kwargs={"exit_on_error": False, "prog": prog},
            save_config_kwargs={"overwrite": True},
            trainer_defaults={
                "callbacks": [ThroughputMonitor(batch_size_fn=batch_rows, length_fn=batch_tokens, separator="/")],
                "precision": fastest_precision(),
            },
            load_from_checkpoint_support=False,  # it would pickle the parsed config into every checkpoint
        )


def fit(cli: TrainCLI) -> None:
    resume = cli.config.get("ckpt_path")
    if resume:
        step = read_checkpoint(resume)["global_step"]
        for logger in cli.trainer.loggers:
            if isinstance(logger, CSVLogger):
                carry_over_metrics(logger, before_step=step)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=resume, weights_only=True)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(passthrough=[])


def run(args: argparse.Namespace) -> int:
    fit(build_cli(args.passthrough))
    return 0
