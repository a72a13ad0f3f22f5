"""What the web app asks of the library: a loaded model, and a request run as the CLI command would run it, with
its live view streamed (live.py) and its settings parsed as the command parses them (tasks.py). The page sees
plain data only; porting the app to a new library API changes these three modules alone."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from ..commands import infill as infill_command
from ..commands import sample as sample_command
from ..commands.messages import user_message
from ..domain import Record
from ..errors import UserInputError
from ..inference import TrainedModel, load_model
from ..infill import InfillRun, infill
from ..sampling import StepCallback, Trajectory
from ..sampling.render import save_trajectory_png
from .live import FRAMES_PER_SECOND, Frame, LiveRun, Row, Start, TimeLimitExceeded
from .tasks import TASKS, Setting, Task, command_line, parse_options, task_settings


class RequestError(Exception):
    """A request the app refuses or stops; its message is one line, the one the CLI prints for the same input."""


@dataclass(frozen=True)
class Sample:
    pieces: tuple[tuple[str, bool], ...]
    """(token text, given) per position: given tokens came from the prompt or template."""
    text: str
    """The sample as the CLI writes it."""


@dataclass(frozen=True)
class Result:
    samples: tuple[Sample, ...]
    summary: str
    write_records: Callable[[Path], Path]
    """Writes the samples as the CLI's --out file (proteins: FASTA) to a path the server chose."""
    trajectory: Trajectory | None = None
    """The row of the live view over the whole run (positions x steps), for the picture."""
    command: str = ""
    """The `discrete-diff ...` command line that draws the same samples in a terminal."""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _pieces(model: TrainedModel, ids: list[int], given: list[bool]) -> tuple[tuple[str, bool], ...]:
    return tuple((model.domain.decode([token]), flag) for token, flag in zip(ids, given, strict=True))


def _shown_token(model: TrainedModel, token: int) -> str:
    """A token as the live view shows it: its text, or its name where it has none (a special token in a
    uniform-state model's noise, which must not vanish from the row)."""
    return model.domain.decode([token]) or model.tokenizer.convert_ids_to_tokens(token)


def _writer(model: TrainedModel, records: list[Record]) -> Callable[[Path], Path]:
    return lambda path: model.domain.write_records(path, records)


def _sample(model: TrainedModel, text: str | None, options: argparse.Namespace, on_step: StepCallback) -> Result:
    """`discrete-diff sample` (alias `generate`): its checks in its order, then the library's `generate`."""
    choice = sample_command.check_options(options)
    run = sample_command.generate_from_args(model, options, choice, on_step)
    shown = [_up_to_document_end(model, ids, options.at_eos) for ids in run.ids]
    samples = tuple(
        Sample(_pieces(model, ids, [False] * len(ids)), record.text)
        for ids, record in zip(shown, run.records, strict=True)
    )
    unit = model.domain.unit
    positions = sum(len(ids) for ids in run.ids)
    summary = f"{_count(len(samples), 'sample')}, {_count(positions, unit)}, {run.network_calls} network calls"
    return Result(samples, summary, _writer(model, run.records))


def _up_to_document_end(model: TrainedModel, ids: list[int], at_eos: str) -> list[int]:
    """The tokens a sample's text shows: with `stop`, those before the first [EOS] (a text's document end)."""
    eos = model.tokenizer.eos_token_id
    return ids[: ids.index(eos)] if at_eos == "stop" and eos in ids else ids


def _infill_summary(run: InfillRun) -> str:
    lengths = sorted({fill.choice.lengths for fill in run.infills})
    chosen = " chosen by the NELBO of the given tokens" if run.infills[0].choice.scores else ""
    blanks = " ".join(f"({', '.join(map(str, c))})" for c in lengths)
    return f"{_count(len(run.infills), 'fill')}, blank lengths {blanks}{chosen}, {run.network_calls} network calls"


def _infill(model: TrainedModel, text: str | None, options: argparse.Namespace, on_step: StepCallback) -> Result:
    """`discrete-diff infill` on one prompt or template: its checks, then the library's `infill`."""
    run = infill(
        model, [text or ""], on_step=on_step, **infill_command.infill_options(options, model.default_settings())
    )
    samples = tuple(
        Sample(_pieces(model, fill.tokens[fill.body].tolist(), fill.given[fill.body].tolist()), fill.text)
        for fill in run.infills
    )
    records = [infill_command.fill_record(number, fill) for number, fill in enumerate(run.infills)]
    return Result(samples, _infill_summary(run), _writer(model, records))


RUNNERS: dict[str, Callable[[TrainedModel, str | None, argparse.Namespace, StepCallback], Result]] = {
    "sample": _sample,
    "generate": _sample,
    "infill": _infill,
    "scaffold": _infill,
}


def save_picture(result: Result, path: Path) -> Path | None:
    """The live view's row over the run (positions x steps), or None when the run had no sampling steps."""
    return None if result.trajectory is None else save_trajectory_png(result.trajectory, path)


class Backend:
    """A loaded model and the tasks of its domain."""

    def __init__(self, model: TrainedModel, name: str, path: str | None = None) -> None:
        """`path`: the checkpoint as the server was given it, for the command lines shown (default: `name`)."""
        self.model, self.name, self.path = model, name, path or name
        self.domain = model.domain.name
        self.tasks = [task for task in TASKS if task.domain == self.domain]
        self.token_text = functools.lru_cache(maxsize=None)(functools.partial(_shown_token, model))

    @classmethod
    def load(cls, path: str | Path) -> Backend:
        """A .ckpt or an exported model directory; a bad path is a UserInputError, as in the CLI."""
        return cls(load_model(path), Path(path).name, str(path))

    def describe(self) -> str:
        parameters = sum(p.numel() for p in self.model.network.parameters())
        return (
            f"{self.domain} model {self.name}: {parameters / 1e6:.2f}M parameters, {len(self.model.tokenizer)} tokens, "
            f"at most {self.model.max_length} positions, trained {self.model.global_step} steps"
        )

    @property
    def recommended_guidance(self) -> float | None:
        """The guidance scale a page suggests once a label is chosen (the domain's recommendation); None for a model
        trained without labels."""
        return None if self.model.labels is None else self.model.domain.recommended_guidance_scale

    def settings(self, task: Task) -> list[Setting]:
        """The task's settings as this model's page shows them: sampling ones at the model's defaults; the label a
        choice among the model's labels ("" = none), with the guidance scale beside it and its recommendation in its
        help, or, for a model trained without labels, not offered (nor guidance where nothing could steer it:
        unconditional samples)."""
        vocabulary = self.model.labels
        shown = []
        for setting in task_settings(task, self.model.default_settings()):
            if setting.name == "label":
                if vocabulary is None:
                    continue
                setting = dataclasses.replace(setting, kind="choice", default="", choices=("", *vocabulary.names))
            elif setting.name.startswith("guidance_") and vocabulary is None and task.input_label is None:
                continue
            elif setting.name == "guidance_scale" and vocabulary is not None:
                advice = f"; a chosen label fills in {self.recommended_guidance:g}, recommended for {self.domain}"
                setting = dataclasses.replace(setting, sampling=False, help=setting.help + advice)
            shown.append(setting)
        return shown

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise RequestError(f"no task {name!r} for a {self.domain} model")

    def _row(self, start: Tensor, told: Start | None) -> Row:
        """The row on show from the start's tokens (L,) and what the loop told of them (None: the model's process;
        the given positions read from the start)."""
        process = self.model.process if told is None else told[1]
        return Row(start, self.model.domain.framing(), self.model.tokenizer.pad_token_id, process,
                   None if told is None else told[0])  # fmt: skip

    def run(
        self,
        name: str,
        text: str | None,
        values: Mapping[str, Any],
        time_limit: float,
        frames_per_second: float = FRAMES_PER_SECOND,
    ) -> Iterator[Frame | Result]:
        """The live view's frames while the run goes (row 0 of its first batch), then the result; bad input or the
        time limit raise RequestError. Closing the iterator early stops the run at its next step."""
        task = self.task(name)
        started = time.monotonic()
        defaults = self.model.default_settings()
        try:
            options = parse_options(task, values, defaults)
            live = LiveRun(
                lambda on_step: RUNNERS[name](self.model, text, options, on_step), time_limit, self._row,
                self.token_text, frames_per_second,
            )  # fmt: skip
            yield from live
        except UserInputError as error:
            raise RequestError(user_message(error)) from None
        except TimeLimitExceeded as error:
            raise RequestError(str(error)) from None
        result = live.result
        summary = f"{result.summary}, {time.monotonic() - started:.1f} s"
        command = command_line(task, self.path, text, values, defaults)
        yield dataclasses.replace(result, summary=summary, trajectory=live.trajectory(), command=command)
