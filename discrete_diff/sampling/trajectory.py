"""Recording how a sequence fills in: the tokens after every step that changed them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Trajectory:
    """Frames of the sampling run; frame 0 is the start, frame k the tokens after step `steps[k]`."""

    frames: Tensor
    """(F, B, L) token ids."""
    steps: list[int]
    """The loop step after which each frame was taken (-1 for the start)."""
    times: Tensor
    """(F, B) float64 diffusion time reached at each frame (1 = all masked)."""
    pinned: Tensor
    """(B, L) bool: given positions."""
    mask_id: int

    def states(self, row: int = 0) -> Tensor:
        """(F, L) int8 per frame and position: 0 masked, 1 revealed earlier, 2 revealed in this step, 3 given."""
        frames = self.frames[:, row]  # (F, L)
        revealed = frames != self.mask_id
        fresh = torch.zeros_like(revealed)
        fresh[1:] = revealed[1:] & (frames[1:] != frames[:-1])
        states = revealed.to(torch.int8) + fresh.to(torch.int8)
        return torch.where(self.pinned[row], torch.full_like(states, 3), states)

    def reveal_steps(self, row: int = 0) -> Tensor:
        """(L,) the loop step at which each position took its final token; -1 for given positions."""
        frames = self.frames[:, row]  # (F, L)
        final = frames[-1]
        settled = (frames == final).flip(0).cumprod(0).flip(0).bool()  # (F, L) equal to final from here on
        first = settled.to(torch.int64).argmax(0)  # (L,) first frame of the final run
        steps = torch.tensor(self.steps)[first]
        return torch.where(self.pinned[row], torch.full_like(steps, -1), steps)


class TrajectoryRecorder:
    def __init__(self, tokens: Tensor, pinned: Tensor, mask_id: int) -> None:
        self.frames, self.steps = [tokens.clone()], [-1]
        self.times = [torch.ones(tokens.shape[0], dtype=torch.float64)]
        self.pinned, self.mask_id = pinned.clone(), mask_id

    def add(self, tokens: Tensor, step: int, time: Tensor) -> None:
        self.frames.append(tokens.clone())
        self.steps.append(step)
        self.times.append(time.clone())

    def finish(self) -> Trajectory:
        return Trajectory(torch.stack(self.frames), self.steps, torch.stack(self.times), self.pinned, self.mask_id)
