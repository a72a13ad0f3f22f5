"""The pages' tasks and their settings. A task is a CLI command; its settings are that command's options, shown with
the defaults the command really uses, and a page's values go through the command's own parser and checks, so a bad
value gets the message the command line prints."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, fields
from types import ModuleType
from typing import Any

from ..commands import infill as infill_command
from ..commands import sample as sample_command
from ..commands.sampling_options import STRATEGY_OPTIONS, add_sampling_arguments
from ..errors import UserInputError
from ..sampling import CONFIDENCES, STRATEGIES, SamplingSettings

TEXT, PROTEIN = "text", "protein"
LIMITS = {"num": 256, "steps": 4096, "length_draws": 64}
"""Bounds the app puts on settings the command line leaves open, so that no one request exhausts the server."""
HIDDEN = frozenset({"checkpoint", "out", "prompt", "prompt_file", "watch", "trajectory_png", "batch_size"})
"""Options a page never offers: files, terminal views, and batch sizes (the command's defaults)."""
PLACEHOLDERS = ["--checkpoint", "the-served-model"]
"""The commands' required options, filled for their parsers; never opened (the app has its model loaded)."""
WORDS = {
    "num": "Number of samples", ("infill", "num"): "Fills per prompt", "length": "Length", "label": "Label",
    "seed": "Random seed", "at_eos": "At a document end", "allow_noncanonical": "Allow non-canonical residues",
    "free_motif_position": "Free motif positions", "length_draws": "Draws per blank length",
    "strategy": "Strategy", "steps": "Steps", "temperature": "Temperature", "top_k": "Top-k", "top_p": "Top-p",
    "repetition_penalty": "Repetition penalty", "confidence": "Confidence measure",
    "reveals_per_step": "Reveals per step", "remask_eta": "Remasking cap (eta)", "threshold": "Reveal threshold",
    "max_per_call": "Most reveals per call", "argmax": "Most likely token", "span_length": "Span length",
    "inner_strategy": "Strategy within a span", "guidance_scale": "Guidance scale",
    "guidance_schedule": "Guidance schedule",
}  # fmt: skip
"""A field's label in words, by option dest ((command, dest) where one command's option means something else); an
option not listed here is labelled by its dest in words (`new_option` -> "New option"). The flag is the hint."""


@dataclass(frozen=True)
class Task:
    """One page of the app: what a CLI command does, with that command's options and defaults."""

    name: str
    """Also the name of its API endpoint."""
    title: str
    domain: str
    command: ModuleType
    input_label: str | None = None
    """The prompt or template box; None for unconditional generation."""
    example: str = ""
    hidden: frozenset[str] = frozenset()
    """Options of the command that do not apply to this page's domain."""
    input_flag: str = "--prompt"
    """The command's option for what the box holds (its command line)."""


TASKS = (
    Task("sample", "Samples", TEXT, sample_command, hidden=frozenset({"allow_noncanonical"})),
    Task(
        "infill",
        "Fill blanks",
        TEXT,
        infill_command,
        "Prompt: [MASK:N] is a blank of N tokens, [MASK:MIN-MAX] one whose length the model chooses",
        "To be, or [MASK:12] the question",
        frozenset({"free_motif_position", "allow_noncanonical"}),
    ),
    Task("generate", "Generate", PROTEIN, sample_command),
    Task(
        "scaffold",
        "Scaffold motifs",
        PROTEIN,
        infill_command,
        "Template: motifs in one-letter code between [MIN-MAX] spacers",
        "[5-15]HHWW[10-30]CC[5-15]",
        input_flag="--template",
    ),
)


@dataclass(frozen=True)
class Setting:
    """One option of a task's CLI command as the page offers it."""

    name: str
    flag: str
    label: str
    """The field's name in words; the flag is shown beside the help."""
    kind: str
    """flag (on/off), choice, int, float or text."""
    default: Any
    """What the command uses when the option is left out (for sampling options: the library's default)."""
    choices: tuple[str, ...]
    help: str
    sampling: bool
    """A sampling option (strategy, steps, filters, a strategy's own); else a task option (num, length, seed)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # the CLI's one-line message instead of usage and exit
        raise UserInputError(f"{self.prog}: {message}")


def _parser(configure: Callable[[argparse.ArgumentParser], None], name: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"discrete-diff {name}", add_help=False)
    configure(parser)
    return parser


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    # argparse has no public list of a parser's options; `_actions` is the one private name the app reads.
    return [action for action in parser._actions if action.option_strings]


def _words(command: str, dest: str) -> str:
    return WORDS.get((command, dest)) or WORDS.get(dest) or dest.replace("_", " ").capitalize()


def _kind(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "flag"
    if action.choices:
        return "choice"
    return {int: "int", float: "float"}.get(action.type, "text")


def _word(value: Any) -> Any:
    """A strategy or confidence measure by the name its option takes; other values as they are."""
    for names in (STRATEGIES, CONFIDENCES):
        for name, cls in names.items():
            if type(value) is cls:
                return name
    return value


def _field_default(field: Field) -> Any:
    return field.default_factory() if field.default is MISSING else field.default  # type: ignore[misc]


def sampling_defaults(settings: SamplingSettings) -> dict[str, Any]:
    """Each sampling option's default: from `settings` (a model's `default_settings`) and the strategies'
    dataclasses. The parser's defaults are None (an option left out keeps the library's), so they are read here."""
    defaults = {field.name: _word(getattr(settings, field.name)) for field in fields(SamplingSettings)}
    for strategy, options in STRATEGY_OPTIONS.items():
        own = {field.name: field for field in fields(STRATEGIES[strategy])}
        defaults |= {dest: _word(_field_default(own[name])) for dest, name in options.items()}
    return defaults


def task_settings(task: Task, defaults: SamplingSettings | None = None) -> list[Setting]:
    """The task command's options in the CLI's order, minus the hidden ones: a new CLI option shows up by itself.
    Sampling options show the model's `defaults` (default: the library's)."""
    sampling = {action.dest for action in _options(_parser(add_sampling_arguments, "sampling"))}
    library = sampling_defaults(defaults or SamplingSettings())
    return [
        Setting(
            name=action.dest,
            flag=action.option_strings[-1],
            label=_words(task.command.NAME, action.dest),
            kind=_kind(action),
            default=library[action.dest] if action.dest in sampling else action.default,
            choices=tuple(action.choices or ()),
            help=action.help or "",
            sampling=action.dest in sampling,
        )
        for action in _options(_parser(task.command.configure, task.command.NAME))
        if action.dest not in HIDDEN | task.hidden
    ]


def _value(setting: Setting, value: Any) -> Any:
    if setting.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)  # number fields send 4.0 for 4
    return value


def command_flags(task: Task, values: Mapping[str, Any], defaults: SamplingSettings | None = None) -> list[str]:
    """The command's options for the page's values (shown over the model's `defaults`), as `--flag=value` words.

    A value that is empty, off, or equal to the default shown is left out, so the command's own default applies
    (sampling options then stay unset, as on the command line). Only the task's settings are accepted, so nothing
    typed names a file."""
    settings = {s.name: s for s in task_settings(task, defaults)}
    flags = []
    for name, raw in values.items():
        if name not in settings:
            raise UserInputError(f"unknown setting {name!r} for {task.title.lower()}")
        setting, value = settings[name], _value(settings[name], raw)
        if value is None or value == "" or value is False or value == setting.default:
            continue
        if setting.kind == "flag" and value is not True:
            raise UserInputError(f"{setting.flag}: expected true or false, got {value!r}")
        flags.append(setting.flag if value is True else f"{setting.flag}={value}")
    return flags


def parse_options(
    task: Task, values: Mapping[str, Any], defaults: SamplingSettings | None = None
) -> argparse.Namespace:
    """The options the CLI command would run with, from the page's values (`command_flags`), through the command's
    parser, so a bad one gets the CLI's message."""
    argv = [*PLACEHOLDERS, *command_flags(task, values, defaults)]
    options = _parser(task.command.configure, task.command.NAME).parse_args(argv)
    settings = {s.name: s for s in task_settings(task, defaults)}
    for name, limit in LIMITS.items():
        value = getattr(options, name, None)
        if value is not None and value > limit:
            raise UserInputError(f"{settings[name].flag} {value}: the web app allows at most {limit}")
    return options


def command_line(
    task: Task, checkpoint: str, text: str | None, values: Mapping[str, Any], defaults: SamplingSettings | None = None
) -> str:
    """The `discrete-diff ...` command that runs this request in a terminal, shell-quoted: the page's task by its
    command's name (or alias), the served checkpoint, the prompt, then the options `command_flags` gives."""
    command = task.command
    name = task.name if task.name in (command.NAME, *getattr(command, "ALIASES", ())) else command.NAME
    given = [] if task.input_label is None else [f"{task.input_flag}={text or ''}"]
    words = ["discrete-diff", name, "--checkpoint", checkpoint]
    for flag in [*given, *command_flags(task, values, defaults)]:
        option, equals, value = flag.partition("=")
        # "--flag value" reads better; a value that starts with "-" must stay attached, or it reads as an option
        words += [flag] if not equals or value.startswith("-") else [option, value]
    return shlex.join(words)
