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

from ..sampling import StepCallback, Trajectory
from ..sampling.render import STATE_COLOURS, STATE_NAMES

MASKED, REVEALED, FRESH, GIVEN = range(4)
"""States of a position in the live view, numbered as `Trajectory.states` numbers them."""
STATES = tuple(zip(STATE_NAMES, STATE_COLOURS, strict=True))
"""(name, colour) of each state: the colours of the trajectory picture."""
FRAMES_PER_SECOND = 20.0
"""The most frames a page is sent per second; steps that come faster are folded into the next frame (infinity: a
frame per step)."""
T = TypeVar("T")


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

    @property
    def masked(self) -> int:
        return sum(state == MASKED for _, state in self.pieces)


class Watcher:
    """The `on_step` of one request, called in its worker thread.

    It stops the run past the time limit or once cancelled, and queues row 0 of the request's first sampling run:
    a request of several batches runs the loop once per batch, and each run starts with a call at step -1.
    """

    def __init__(self, time_limit: float) -> None:
        self.time_limit = time_limit
        self.deadline = time.monotonic() + time_limit
        self.states: queue.SimpleQueue = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self.runs = 0

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
            self.states.put((tokens[0].clone(), step, float(times[0])))  # tokens (B, L): row 0 only


class Row:
    """The states of the row on show, between its framing; positions not masked at the start are given ones."""

    def __init__(
        self, start: Tensor, framing: tuple[Sequence[int], Sequence[int]], pad_id: int | None, mask_id: int
    ) -> None:
        head, tail = framing
        content = len(start) if pad_id is None else int((start != pad_id).nonzero().max()) + 1  # padding after
        self.body = slice(len(head), content - len(tail))
        self.mask_id = mask_id
        self.given = start[self.body] != mask_id  # (L,)
        self.states, self.steps, self.times = [start[self.body]], [-1], [1.0]

    def add(self, tokens: Tensor, step: int, time_reached: float) -> None:
        self.states.append(tokens[self.body])
        self.steps.append(step)
        self.times.append(time_reached)

    def frame(self, token_text: Callable[[int], str], before: Tensor | None) -> Frame:
        """The latest state; fresh: changed since `before` (the frame shown last)."""
        ids = self.states[-1]  # (L,)
        states = torch.full_like(ids, REVEALED)
        if before is not None:
            states[ids != before] = FRESH
        states[ids == self.mask_id] = MASKED
        states[self.given] = GIVEN
        return Frame(self.steps[-1], tuple(zip(map(token_text, ids.tolist()), states.tolist(), strict=True)))

    def trajectory(self) -> Trajectory:
        """Every state of the row as a one-row trajectory, for the picture."""
        frames = torch.stack(self.states)[:, None]  # (F, 1, L)
        times = torch.tensor(self.times, dtype=torch.float64)[:, None]  # (F, 1)
        return Trajectory(frames, list(self.steps), times, self.given[None], self.mask_id)


class LiveRun(Generic[T]):
    """A job run in a worker thread with a Watcher as its `on_step`: iterate for the frames of the row on show as
    they come; when the iteration ends, `result` holds what the job returned (its exception is raised instead)."""

    def __init__(
        self,
        job: Callable[[StepCallback], T],
        time_limit: float,
        row: Callable[[Tensor], Row],
        token_text: Callable[[int], str],
        frames_per_second: float = FRAMES_PER_SECOND,
    ) -> None:
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
                tokens, step, time_reached = item
                if self.row is None:
                    self.row = self._row_of(tokens)
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
