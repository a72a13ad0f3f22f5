"""Everything the web app asks of the library, in one module; the page sees plain data only.

Porting the app to a new pipeline API changes this file alone. The code that calls the library: `Backend.load`,
`domain_of`, `_parser` / `parse_options` (the CLI commands' own parsers and `settings_from_args`), the four runners
`_sample`, `_infill`, `_generate`, `_scaffold`, `_captured`, `save_picture`, and `_Watch`, which stands in for the
sampling loop's per-step callback until the loop has one.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from ..checkpoint import TrainedModel, load_trained_model
from ..commands import generate as generate_command
from ..commands import infill as infill_command
from ..commands import sample as sample_command
from ..errors import UserInputError
from ..generation import generate_ids
from ..hf.pipeline import REQUIRED, DiffusionPipeline
from ..infill import Infill, LikelihoodLength, infill_text, scaffold_proteins
from ..protein.fasta import write_fasta
from ..protein.generate import GenerationSettings, choose_lengths, generate_proteins, parse_lengths
from ..sampling import Trajectory
from ..sampling.options import settings_from_args
from ..sampling.render import STATE_COLOURS, STATE_NAMES, save_trajectory_png

TEXT, PROTEIN = "text", "protein"
MASKED, REVEALED, FRESH, GIVEN = range(4)
"""States of a position in the live view, numbered as `Trajectory.states` numbers them."""
STATES = tuple(zip(STATE_NAMES, STATE_COLOURS, strict=True))
"""(name, colour) of each state: the colours of the trajectory picture."""
MAX_FRAMES = 64  # enough to watch the masks clear, few enough for the browser to redraw each one
LIMITS = {"num": 256, "steps": 4096, "length_draws": 64}
"""Bounds the app puts on settings the command line leaves open, so that no one request exhausts the server."""
COMMON_HIDDEN = frozenset({"checkpoint", "out", "prompt", "prompt_file", "template", "watch", "trajectory_png"})
"""Command options a page never offers: files and terminal views. Batch sizes stay at the CLI's defaults too."""


class RequestError(Exception):
    """A request the app refuses or stops; its message is one line, the one the CLI prints for the same input."""


class TimeLimitExceeded(RequestError):
    pass


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
    hidden: frozenset[str] = frozenset({"batch_size"})


TASKS = (
    Task("sample", "Samples", TEXT, sample_command),
    Task(
        "infill",
        "Fill blanks",
        TEXT,
        infill_command,
        "Prompt: [MASK:N] is a blank of N tokens, [MASK:MIN-MAX] one whose length the model chooses",
        "To be, or [MASK:12] the question",
        frozenset({"batch_size", "free_motif_position", "allow_noncanonical"}),
    ),
    Task("generate", "Generate", PROTEIN, generate_command),
    Task(
        "scaffold",
        "Scaffold motifs",
        PROTEIN,
        infill_command,
        "Template: motifs in one-letter code between [MIN-MAX] spacers",
        "[5-15]HHWW[10-30]CC[5-15]",
    ),
)


@dataclass(frozen=True)
class Setting:
    """One option of a task's CLI command as the page offers it; `default` is the command's own."""

    name: str
    flag: str
    kind: str
    """flag (on/off), choice, int, float or text."""
    default: Any
    choices: tuple[str, ...]
    help: str
    sampling: bool
    """In the command's `sampling` group (strategy, steps, filters); else a task option (num, length, seed)."""


@dataclass(frozen=True)
class Frame:
    """The shown sample after one step of the run: (token text, state) per position."""

    index: int
    count: int
    pieces: tuple[tuple[str, int], ...]

    @property
    def masked(self) -> int:
        return sum(state == MASKED for _, state in self.pieces)


@dataclass(frozen=True)
class Sample:
    pieces: tuple[tuple[str, bool], ...]
    """(token text, given) per position: given tokens came from the prompt or template."""
    text: str
    """The sample as the CLI prints it."""


@dataclass(frozen=True)
class _Shown:
    """Which row of a recorded run the live view shows, and its positions without framing."""

    trajectory: Trajectory
    row: int = 0
    body: slice = field(default_factory=lambda: slice(None))


@dataclass(frozen=True)
class Result:
    samples: tuple[Sample, ...]
    summary: str
    shown: _Shown | None = None
    write_fasta: Callable[[Path], Path] | None = None
    """Proteins: writes the samples as the CLI's FASTA file to a path the server chose."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # the CLI's one-line message instead of usage and exit
        raise UserInputError(f"{self.prog}: {message}")


def _parser(command: ModuleType) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"discrete-diff {command.NAME}", add_help=False)
    command.configure(parser)
    return parser


def _kind(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "flag"
    if action.choices:
        return "choice"
    return {int: "int", float: "float"}.get(action.type, "text")


def task_settings(task: Task) -> list[Setting]:
    """The task command's options in the CLI's order, minus the hidden ones: a new CLI option shows up by itself."""
    parser = _parser(task.command)
    sampling = {id(a) for group in parser._action_groups if group.title == "sampling" for a in group._group_actions}
    return [
        Setting(
            name=action.dest,
            flag=action.option_strings[-1],
            kind=_kind(action),
            default=action.default,
            choices=tuple(action.choices or ()),
            help=action.help or "",
            sampling=id(action) in sampling,
        )
        for action in parser._actions
        if action.option_strings and action.dest not in COMMON_HIDDEN | task.hidden
    ]


def _argument(setting: Setting, value: Any) -> str:
    if setting.kind == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)  # number fields send 4.0 for 4
    return f"{setting.flag}={value}"


def parse_options(task: Task, values: Mapping[str, Any]) -> argparse.Namespace:
    """The options the CLI command would run with, from the page's values (None or empty: the default).

    Values go through the command's own parser, so a bad one gets the CLI's message; only the task's settings are
    accepted, so nothing typed names a file: the command's file options keep placeholders that are never opened.
    """
    settings = {s.name: s for s in task_settings(task)}
    argv = list(REQUIRED)
    for name, value in values.items():
        if name not in settings:
            raise UserInputError(f"unknown setting {name!r} for {task.title.lower()}")
        if value is None or value == "" or value is False:
            continue
        if settings[name].kind == "flag" and value is not True:
            raise UserInputError(f"{settings[name].flag}: expected true or false, got {value!r}")
        argv.append(settings[name].flag if value is True else _argument(settings[name], value))
    options = _parser(task.command).parse_args(argv)
    for name, limit in LIMITS.items():
        value = getattr(options, name, None)
        if value is not None and value > limit:
            raise UserInputError(f"{settings[name].flag} {value}: the web app allows at most {limit}")
    return options


def one_line(error: BaseException) -> str:
    """The text the CLI prints after `discrete-diff: error:`."""
    return " ".join(str(error).split()) or type(error).__name__


def domain_of(model: TrainedModel) -> str:
    return PROTEIN if DiffusionPipeline(model).is_protein else TEXT


class _Watch:
    """The network as one request sees it: every use checks the request's time limit, and with `capture` the
    tokens of row 0 at each call of the first sampling run are kept (the state after every step that changed it).

    The sampling loop passes one attention-mask tensor to every call of a run, which tells the first run's calls
    from a later batch's. The loop's own per-step callback will replace the capture.
    """

    def __init__(self, network: Any, limit: float, capture: bool) -> None:
        self._network, self._limit, self._capture = network, limit, capture
        self._deadline = time.monotonic() + limit
        self._run: Tensor | None = None
        self.states: list[Tensor] = []

    def _check(self) -> None:
        if time.monotonic() > self._deadline:
            raise TimeLimitExceeded(
                f"stopped: the server limits a request to {self._limit:g} s of generation; "
                "ask for fewer samples or steps"
            )

    def __call__(self, tokens: Tensor, attention_mask: Tensor | None = None, *args: Any, **kwargs: Any) -> Tensor:
        self._check()
        if self._capture and (not self.states or attention_mask is self._run):
            self._run = attention_mask
            self.states.append(tokens[0].clone())
        return self._network(tokens, attention_mask, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # other uses (key-value-cache decoding) are checked too
        self._check()
        return getattr(self._network, name)


def _captured(watch: _Watch, final: Tensor, mask_id: int) -> _Shown | None:
    """The first run's row 0 over the positions it generated, with `final` (those positions' last tokens)."""
    if not watch.states:
        return None
    generated = (watch.states[0] == mask_id).nonzero().flatten()
    body = slice(int(generated[0]), int(generated[-1]) + 1)
    tokens = torch.stack([state[body] for state in watch.states] + [final])[:, None]  # (F, 1, L)
    count = len(tokens)
    trajectory = Trajectory(
        tokens, list(range(-1, count - 1)), torch.zeros(count, 1, dtype=torch.float64),
        torch.zeros(1, tokens.shape[-1], dtype=torch.bool), mask_id,
    )  # fmt: skip
    return _Shown(trajectory)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _pieces(model: TrainedModel, ids: list[int], given: list[bool]) -> tuple[tuple[str, bool], ...]:
    return tuple((model.tokenizer.decode([token]), flag) for token, flag in zip(ids, given, strict=True))


def _sample(model: TrainedModel, text: str | None, options: argparse.Namespace, watch: _Watch) -> Result:
    settings = settings_from_args(options)
    limit = model.network.config.max_length
    if not 1 <= options.length <= limit:  # the check and message of `discrete-diff sample`, in its order
        raise ValueError(f"--length {options.length} must be between 1 and the model's max_length {limit}")
    ids, calls = generate_ids(
        model, num_samples=options.num, length=options.length, seed=options.seed, settings=settings
    )
    texts = model.tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)
    special = set(model.tokenizer.all_special_ids)
    samples = []
    for row, sample_text in zip(ids.tolist(), texts, strict=True):
        kept = [token for token in row if token not in special]
        samples.append(Sample(_pieces(model, kept, [False] * len(kept)), sample_text))
    summary = f"{_count(len(samples), 'sample')} of {options.length} tokens, {calls} network calls"
    return Result(tuple(samples), summary, _captured(watch, ids[0], model.mask_id))


def _generate(model: TrainedModel, text: str | None, options: argparse.Namespace, watch: _Watch) -> Result:
    if options.num < 1:
        raise UserInputError("--num and --batch-size must be positive")
    settings = GenerationSettings(
        sampling=settings_from_args(options),
        seed=options.seed,
        allow_noncanonical=options.allow_noncanonical,
        batch_size=options.batch_size,
    )
    choice = parse_lengths(options.length) if options.length else None
    lengths = choose_lengths(model, options.num, choice, torch.Generator().manual_seed(options.seed))
    records, calls = generate_proteins(model, lengths, settings)
    samples = tuple(Sample(tuple((r, False) for r in record.sequence), record.sequence) for record in records)
    # Row 0 of the first batch is the first of the shortest: the library batches proteins by length.
    first = records[min(range(len(lengths)), key=lengths.__getitem__)].sequence
    final = torch.tensor(model.tokenizer.convert_tokens_to_ids(list(first)))
    summary = f"{_count(len(records), 'sequence')}, {sum(lengths)} residues, {calls} network calls"
    return Result(samples, summary, _captured(watch, final, model.mask_id), lambda path: write_fasta(path, records))


def _infill_options(options: argparse.Namespace) -> dict[str, Any]:
    if options.length_draws < 1:
        raise UserInputError(f"--length-draws must be at least 1, got {options.length_draws}")
    return dict(
        num=options.num,
        settings=settings_from_args(options),
        seed=options.seed,
        batch_size=options.batch_size,
        record=True,
        length_rule=LikelihoodLength(options.length_draws),
    )


def _infill_result(model: TrainedModel, infills: list[Infill], calls: int) -> tuple[tuple[Sample, ...], str]:
    samples = tuple(
        Sample(_pieces(model, i.tokens[i.body].tolist(), i.given[i.body].tolist()), i.text) for i in infills
    )
    lengths = sorted({i.choice.lengths for i in infills})
    chosen = " chosen by the NELBO of the given tokens" if infills[0].choice.scores else ""
    blanks = " ".join(f"({', '.join(map(str, c))})" for c in lengths)
    return samples, f"{_count(len(samples), 'fill')}, blank lengths {blanks}{chosen}, {calls} network calls"


def _shown(infill: Infill) -> _Shown | None:
    return None if infill.trajectory is None else _Shown(infill.trajectory, infill.row, infill.body)


def _infill(model: TrainedModel, text: str | None, options: argparse.Namespace, watch: _Watch) -> Result:
    run = infill_text(model, [text or ""], **_infill_options(options))
    samples, summary = _infill_result(model, run.infills, run.network_calls)
    return Result(samples, summary, _shown(run.infills[0]))


def _scaffold(model: TrainedModel, text: str | None, options: argparse.Namespace, watch: _Watch) -> Result:
    run = scaffold_proteins(
        model,
        text or "",
        free_motif_position=options.free_motif_position,
        allow_noncanonical=options.allow_noncanonical,
        **_infill_options(options),
    )

    def write(path: Path) -> Path:
        infill_command.write_scaffolds(run, str(path))
        return path

    samples, summary = _infill_result(model, run.infills, run.network_calls)
    return Result(samples, summary, _shown(run.infills[0]), write)


RUNNERS: dict[str, Callable[[TrainedModel, str | None, argparse.Namespace, _Watch], Result]] = {
    "sample": _sample,
    "generate": _generate,
    "infill": _infill,
    "scaffold": _scaffold,
}
CAPTURED = frozenset({"sample", "generate"})
"""Tasks whose library call records no trajectory: the live view comes from `_Watch`'s capture."""


def _spread(indices: list[int], count: int) -> list[int]:
    """At most `count` of `indices`, evenly spread, the first and last always kept."""
    if len(indices) <= count:
        return indices
    return [indices[round(k * (len(indices) - 1) / (count - 1))] for k in range(count)]


def frames(model: TrainedModel, shown: _Shown) -> list[Frame]:
    """The frames of the shown row in which it changed (at most MAX_FRAMES): fresh = changed since the last one."""
    ids = shown.trajectory.frames[:, shown.row, shown.body]  # (F, L)
    pinned = shown.trajectory.pinned[shown.row, shown.body]  # (L,)
    changed = [0] + [f for f in range(1, len(ids)) if not torch.equal(ids[f], ids[f - 1])]
    picked = _spread(changed, MAX_FRAMES)
    text = {token: model.tokenizer.decode([token]) for token in ids.unique().tolist()}
    result, previous = [], ids[picked[0]]
    for index, f in enumerate(picked):
        states = torch.full_like(ids[f], REVEALED)
        states[ids[f] != previous] = FRESH
        states[ids[f] == shown.trajectory.mask_id] = MASKED
        states[pinned] = GIVEN
        pieces = tuple((text[t], s) for t, s in zip(ids[f].tolist(), states.tolist(), strict=True))
        result.append(Frame(index, len(picked), pieces))
        previous = ids[f]
    return result


def save_picture(result: Result, path: Path) -> Path | None:
    """The shown sample's trajectory picture (positions x steps), or None when the run had no live view."""
    if result.shown is None:
        return None
    shown = result.shown
    return save_trajectory_png(shown.trajectory, path, row=shown.row, positions=shown.body)


class Backend:
    """A loaded model and the tasks of its domain."""

    def __init__(self, model: TrainedModel, name: str) -> None:
        self.model, self.name = model, name
        self.domain = domain_of(model)
        self.tasks = [task for task in TASKS if task.domain == self.domain]

    @classmethod
    def load(cls, path: str | Path) -> Backend:
        """A .ckpt or an exported model directory; a bad path is a UserInputError, as in the CLI."""
        return cls(load_trained_model(path), Path(path).name)

    def describe(self) -> str:
        parameters = sum(p.numel() for p in self.model.network.parameters())
        return (
            f"{self.domain} model {self.name}: {parameters / 1e6:.2f}M parameters, {len(self.model.tokenizer)} tokens, "
            f"at most {self.model.network.config.max_length} positions, trained {self.model.global_step} steps"
        )

    def settings(self, task: Task) -> list[Setting]:
        """The task's settings for this model's page: the one place where they meet the model (a default length
        beyond its limit starts at the limit; settings read from a checkpoint, such as labels, would plug in here)."""
        limit = self.model.network.config.max_length
        return [
            dataclasses.replace(s, default=limit) if s.kind == "int" and s.name == "length" and s.default > limit else s
            for s in task_settings(task)
        ]

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise RequestError(f"no task {name!r} for a {self.domain} model")

    def run(
        self, name: str, text: str | None, values: Mapping[str, Any], time_limit: float
    ) -> Iterator[Frame | Result]:
        """The live view's frames, then the result; bad input or the time limit raise RequestError.

        The frames replay the finished run; with the loop's per-step callback they will arrive while it runs.
        """
        task = self.task(name)
        started = time.monotonic()
        watch = _Watch(self.model.network, time_limit, capture=name in CAPTURED)
        try:
            options = parse_options(task, values)
            result = RUNNERS[name](dataclasses.replace(self.model, network=watch), text, options, watch)
        except (UserInputError, ValueError) as error:
            raise RequestError(one_line(error)) from None
        result = dataclasses.replace(result, summary=f"{result.summary}, {time.monotonic() - started:.1f} s")
        if result.shown is not None:
            yield from frames(self.model, result.shown)
        yield result
