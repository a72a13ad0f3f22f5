"""The live view, streamed: a request's generation runs in a worker thread, and the sampling loop's `on_step`
callback hands each new state of the row on show to a queue that the page's iterator reads as the run goes.

The callback is also where a run is stopped: past the server's time limit, or when the page stopped listening.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
from torch import Tensor

from ..noising import NoisingProcess
from ..sampling import StepCallback, Trajectory
from ..sampling.render import STATE_COLOURS, STATE_NAMES
from ..sampling.trajectory import (
    ABSORBING_STATES,
    CHANGED,
    FRESH,
    GIVEN,
    MASKED,
    REVEALED,
    REVISABLE,
    position_states,
    process_states,
)

__all__ = [  # the states are the trajectory's; the view and the tests name them from here
    "CHANGED", "FRESH", "GIVEN", "MASKED", "REVEALED", "REVISABLE", "STATES", "FRAMES_PER_SECOND", "Start", "Stopped",
    "TimeLimitExceeded", "Cancelled", "Frame", "Watcher", "Row", "LiveRun",
]  # fmt: skip
STATES = tuple(zip(STATE_NAMES, STATE_COLOURS, strict=True))
"""(name, colour) of each state, numbered as `Trajectory.states` numbers them: the colours of the picture."""
FRAMES_PER_SECOND = 20.0
"""The most frames a page is sent per second; steps that come faster are folded into the next frame (infinity: a
frame per step)."""
T = TypeVar("T")
Start = tuple[Tensor, NoisingProcess]
"""What the sampling loop tells a watcher before a run's start call: the given positions (L,) of the row on show
and the model's noising process."""


class Stopped(Exception):
    """Raised from `on_step` to end a run; the sampling loop lets it through to the worker thread."""


class TimeLimitExceeded(Stopped):
    pass


class Cancelled(Stopped):
    """The page stopped listening: nobody will see the result."""


@dataclass(frozen=True)
class Frame:
    """The row on show after one step of the run: (token text, state) per position."""

    step: int
    """The loop step it follows (-1: the start)."""
    pieces: tuple[tuple[str, int], ...]
    states: tuple[int, ...] = ABSORBING_STATES
    """The states its run can show (its process's): a uniform-state run's are revisable, changed and given."""

    @property
    def masked(self) -> int:
        return sum(state == MASKED for _, state in self.pieces)

    @property
    def changed(self) -> int:
        """Positions of a uniform-state run that changed since the frame before."""
        return sum(state == CHANGED for _, state in self.pieces)

    @property
    def progress(self) -> str:
        """How far the run is, in its own terms: blanks left to reveal, or positions changed since the last frame."""
        return f"{self.masked} masked" if MASKED in self.states else f"{self.changed} changed"


class Watcher:
    """The `on_step` of one request, called in its worker thread (a `sampling.StepWatcher`: told before each run's
    start which positions are given).

    It stops the run past the time limit or once cancelled, and queues row 0 of the request's first sampling run:
    a request of several batches runs the loop once per batch, and each run starts with a call at step -1.
    """

    def __init__(self, time_limit: float) -> None:
        self.time_limit = time_limit
        self.deadline = time.monotonic() + time_limit
        self.states: queue.SimpleQueue = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self.runs = 0
        self.start: Start | None = None

    def begin(self, pinned: Tensor, process: NoisingProcess) -> None:
        self.start = (pinned[0].clone(), process)  # pinned (B, L): row 0 only

    def __call__(self, tokens: Tensor, step: int, times: Tensor) -> None:
        if self.cancelled.is_set():
            raise Cancelled("the page stopped listening")
        if time.monotonic() > self.deadline:
            raise TimeLimitExceeded(
                f"stopped: the server limits a request to {self.time_limit:g} s of generation; "
                "ask for fewer samples or steps"
            )
        self.runs += step < 0
        if self.runs == 1:
            self.states.put((tokens[0].clone(), step, float(times[0]), self.start))  # tokens (B, L): row 0 only


class Row:
    """The states of the row on show, between its framing."""

    def __init__(
        self,
        start: Tensor,
        framing: tuple[Sequence[int], Sequence[int]],
        pad_id: int | None,
        process: NoisingProcess,
        pinned: Tensor | None = None,
    ) -> None:
        """start, pinned (L,): the tokens at the run's start and its given positions (padding included); without
        `pinned`, the positions the process does not count undecided at the start (an absorbing run's
        non-[MASK] ones: a uniform-state run's noise cannot be told from given tokens, its watcher is told)."""
        head, tail = framing
        if pinned is None:
            pinned = ~process.undecided(start, torch.ones_like(start, dtype=torch.bool))
        padding = torch.zeros_like(pinned) if pad_id is None else pinned & (start == pad_id)  # (L,)
        content = int((~padding).nonzero().max()) + 1  # padding comes after the content
        self.body = slice(len(head), content - len(tail))
        self.process = process
        self.given = pinned[self.body]  # (L,)
        self.states, self.steps, self.times = [start[self.body]], [-1], [1.0]

    def add(self, tokens: Tensor, step: int, time_reached: float) -> None:
        self.states.append(tokens[self.body])
        self.steps.append(step)
        self.times.append(time_reached)

    def frame(self, token_text: Callable[[int], str], before: Tensor | None) -> Frame:
        """The latest state; changed: since `before` (the frame shown last)."""
        ids = self.states[-1]  # (L,)
        changed = torch.zeros_like(self.given) if before is None else ids != before
        states = position_states(ids, changed, self.given, self.process)
        pieces = tuple(zip(map(token_text, ids.tolist()), states.tolist(), strict=True))
        return Frame(self.steps[-1], pieces, process_states(self.process))

    def trajectory(self) -> Trajectory:
        """Every state of the row as a one-row trajectory, for the picture."""
        frames = torch.stack(self.states)[:, None]  # (F, 1, L)
        times = torch.tensor(self.times, dtype=torch.float64)[:, None]  # (F, 1)
        return Trajectory(frames, list(self.steps), times, self.given[None], self.process)


class LiveRun(Generic[T]):
    """A job run in a worker thread with a Watcher as its `on_step`: iterate for the frames of the row on show as
    they come; when the iteration ends, `result` holds what the job returned (its exception is raised instead)."""

    def __init__(
        self,
        job: Callable[[StepCallback], T],
        time_limit: float,
        row: Callable[[Tensor, Start | None], Row],
        token_text: Callable[[int], str],
        frames_per_second: float = FRAMES_PER_SECOND,
    ) -> None:
        """row: the Row of the start's tokens (L,) and what the loop told the watcher (None: nothing)."""
        self.watcher = Watcher(time_limit)
        self.interval = 1.0 / frames_per_second
        self._row_of, self._token_text = row, token_text
        self.row: Row | None = None
        self.result: T | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, args=(job,), name="discrete-diff-generation", daemon=True)

    def _work(self, job: Callable[[StepCallback], T]) -> None:
        try:
            self.result = job(self.watcher)
        except BaseException as error:  # handed to the iterating thread, which raises it
            self.error = error
        finally:
            self.watcher.states.put(None)

    def __iter__(self) -> Iterator[Frame]:
        self.thread.start()
        try:
            yield from self._frames()
        finally:
            self.watcher.cancelled.set()  # a page that stopped listening stops the run at its next step
        if self.error is not None:
            raise self.error

    def _frames(self) -> Iterator[Frame]:
        shown: Tensor | None = None
        pending, due, finished = False, 0.0, False
        while not finished:
            try:
                item = self.watcher.states.get(timeout=max(0.0, due - time.monotonic()) if pending else None)
            except queue.Empty:
                item = ()
            if item is None:
                finished = True
            elif item:
                tokens, step, time_reached, start = item
                if self.row is None:
                    self.row = self._row_of(tokens, start)
                else:
                    self.row.add(tokens, step, time_reached)
                pending = shown is None or not torch.equal(self.row.states[-1], shown)
            if pending and (finished or time.monotonic() >= due):
                time.sleep(max(0.0, due - time.monotonic()))  # the last frame too waits: each stays an interval
                yield self.row.frame(self._token_text, shown)
                shown, pending, due = self.row.states[-1], False, time.monotonic() + self.interval

    def trajectory(self) -> Trajectory | None:
        """The row on show over the whole run, when the run had sampling steps."""
        return None if self.row is None else self.row.trajectory()
