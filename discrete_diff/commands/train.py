"""`discrete-diff train --config CONFIG.yaml [--key value ...] [--ckpt_path LAST.ckpt]`: LightningCLI training."""

from __future__ import annotations

import argparse
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import yaml
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

from ..callbacks import TokenThroughput
from ..data import SequenceDataModule
from ..errors import UserInputError
from ..lit import DiffusionModule

NAME = "train"
HELP = "train a model from a YAML config (LightningCLI: any Trainer, model or data option can be overridden)"
OPTION_GROUPS = ("trainer", "model")
"""Config sections that hold options; jsonargparse silently drops a section given as anything but a mapping."""


class TrainCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # The model's vocabulary is whatever tokenizer the data module built or loaded.
        parser.link_arguments("data.tokenizer", "model.tokenizer", apply_on="instantiate")
        parser.add_argument("--ckpt_path", type=str | None, default=None, help="resume training from this checkpoint")

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        for source, config in _config_files(args):
            for group in OPTION_GROUPS:
                value = config.get(group) if isinstance(config, dict) else None
                if value is not None and not isinstance(value, dict):
                    raise UserInputError(f"{source}: '{group}' must be a mapping of options, got {value!r:.40}")
        super().parse_arguments(parser, args)

    def before_instantiate_classes(self) -> None:
        """Check the resume path before building anything, so the error is the only thing printed."""
        resume = self.config.get("ckpt_path")
        if resume and not Path(resume).is_file():
            raise UserInputError(f"--ckpt_path {resume}: checkpoint not found")


def _config_files(args: ArgsType) -> Iterator[tuple[str, object]]:
    """(source, parsed YAML) of each --config; ones that do not parse are left to jsonargparse to report."""
    args = list(args) if isinstance(args, list) else []
    for index, arg in enumerate(args):
        value = args[index + 1] if arg == "--config" and index + 1 < len(args) else None
        value = arg.removeprefix("--config=") if arg.startswith("--config=") else value
        if value is None:
            continue
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else value
            yield (str(path) if path.is_file() else "--config"), yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue


def build_cli(args: list[str]) -> TrainCLI:
    """Parse and instantiate (model, data, trainer) without running; raises ArgumentError on bad config."""
    # The seed is in the config; its log line would only stand between a user and an error message.
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return _instantiate(args)


def _instantiate(args: list[str]) -> TrainCLI:
    return TrainCLI(
        model_class=DiffusionModule,
        datamodule_class=SequenceDataModule,
        subclass_mode_data=True,
        args=args,
        run=False,
        parser_kwargs={"exit_on_error": False, "prog": "discrete-diff train"},
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": [TokenThroughput()]},
        load_from_checkpoint_support=False,  # it would pickle the parsed config into every checkpoint
    )


def fit(cli: TrainCLI) -> None:
    resume = cli.config.get("ckpt_path")
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=resume, weights_only=True)


PASSTHROUGH = True


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(passthrough=[])


def run(args: argparse.Namespace) -> int:
    fit(build_cli(args.passthrough))
    return 0
