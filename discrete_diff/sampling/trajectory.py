"""Recording how a sequence is denoised: the tokens after every step that changed them, and the state of each
position in each frame (as the terminal view, the picture and the web app's live view show it)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..noising import NoisingProcess

MASKED, REVEALED, FRESH, GIVEN, REVISABLE, CHANGED = range(6)
"""States of a position in a frame. An absorbing run's positions are masked, revealed (earlier), revealed in this
step (fresh) or given; a run of a process that `revises` (uniform-state) never has [MASK]: its positions hold a
token that may still change (revisable), one that changed in this step, or a given one."""
ABSORBING_STATES = (MASKED, REVEALED, FRESH, GIVEN)
REVISING_STATES = (REVISABLE, CHANGED, GIVEN)


def process_states(process: NoisingProcess) -> tuple[int, ...]:
    """The states a run of `process` can show."""
    return REVISING_STATES if process.revises else ABSORBING_STATES


def position_states(tokens: Tensor, changed: Tensor, given: Tensor, process: NoisingProcess) -> Tensor:
    """(..., L) int8 state of each position of tokens (..., L): `changed` (..., L) since the frame before, `given`
    (L,) from the prompt or template. The process says which positions are undecided; one that revises shows
    changes as changes, not as reveals."""
    if process.revises:
        states = torch.where(changed, CHANGED, REVISABLE)
    else:
        undecided = process.undecided(tokens, ~given)
        states = torch.where(undecided, MASKED, torch.where(changed, FRESH, REVEALED))
    return torch.where(given, GIVEN, states).to(torch.int8)


@dataclass(frozen=True)
class Trajectory:
    """Frames of the sampling run; frame 0 is the start, frame k the tokens after step `steps[k]`."""

    frames: Tensor
    """(F, B, L) token ids."""
    steps: list[int]
    """The loop step after which each frame was taken (-1 for the start)."""
    times: Tensor
    """(F, B) float64 diffusion time reached at each frame (1 = the start, all noise)."""
    pinned: Tensor
    """(B, L) bool: given positions."""
    process: NoisingProcess
    """How the run's model noises tokens: what its positions' states mean."""

    def states(self, row: int = 0) -> Tensor:
        """(F, L) int8 per frame and position, numbered as MASKED ... CHANGED (`position_states`)."""
        frames = self.frames[:, row]  # (F, L)
        changed = torch.zeros_like(frames, dtype=torch.bool)
        changed[1:] = frames[1:] != frames[:-1]
        return position_states(frames, changed, self.pinned[row], self.process)

    def reveal_steps(self, row: int = 0) -> Tensor:
        """(L,) the loop step at which each position took its final token; -1 for given positions."""
        frames = self.frames[:, row]  # (F, L)
        final = frames[-1]
        settled = (frames == final).flip(0).cumprod(0).flip(0).bool()  # (F, L) equal to final from here on
        first = settled.to(torch.int64).argmax(0)  # (L,) first frame of the final run
        steps = torch.tensor(self.steps)[first]
        return torch.where(self.pinned[row], torch.full_like(steps, -1), steps)


class TrajectoryRecorder:
    def __init__(self, tokens: Tensor, pinned: Tensor, process: NoisingProcess) -> None:
        self.frames, self.steps = [tokens.clone()], [-1]
        self.times = [torch.ones(tokens.shape[0], dtype=torch.float64)]
        self.pinned, self.process = pinned.clone(), process

    def add(self, tokens: Tensor, step: int, time: Tensor) -> None:
        self.frames.append(tokens.clone())
        self.steps.append(step)
        self.times.append(time.clone())

    def finish(self) -> Trajectory:
        return Trajectory(torch.stack(self.frames), self.steps, torch.stack(self.times), self.pinned, self.process)
