"""Watching a sequence denoise: a terminal view that redraws it as it fills in, and a picture (positions x steps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..atomic_files import atomic_save_figure
from .trajectory import CHANGED, FRESH, MASKED, Trajectory, process_states

STATE_NAMES = ("masked", "revealed", "revealed this step", "given", "may still change", "changed this step")
"""The states' names, numbered as `Trajectory.states` numbers them."""
STATE_COLOURS = ("#d9d9d9", "#4c72b0", "#dd8452", "#2ca02c", "#8172b3", "#c44e52")
CLEAR_SCREEN = "\x1b[H\x1b[J"
BOLD, RESET = "\x1b[1m", "\x1b[0m"


def frame_text(
    trajectory: Trajectory,
    frame: int,
    token_text: Callable[[int], str],
    row: int = 0,
    placeholder: str = "_",
    highlight: bool = False,
    positions: slice = slice(None),
) -> str:
    """One frame as text: masked positions as `placeholder`, tokens revealed or changed in this step bold if
    `highlight`."""
    states = trajectory.states(row)[frame, positions]  # (L,)
    pieces = []
    for token, state in zip(trajectory.frames[frame, row, positions].tolist(), states.tolist(), strict=True):
        text = placeholder if state == MASKED else token_text(token)
        pieces.append(f"{BOLD}{text}{RESET}" if highlight and state in (FRESH, CHANGED) else text)
    return "".join(pieces)


def render_terminal(
    trajectory: Trajectory,
    token_text: Callable[[int], str],
    stream: TextIO,
    *,
    row: int = 0,
    delay: float = 0.05,
    positions: slice = slice(None),
) -> None:
    """Redraw the row after every step that changed it (in place on a terminal; one block per frame otherwise).

    `positions` selects what to show (e.g. a sequence without its framing and padding).
    """
    interactive = stream.isatty()
    frames = trajectory.frames[:, row, positions]  # (F, L)
    for frame, step in enumerate(trajectory.steps):
        if frame > 0 and torch.equal(frames[frame], frames[frame - 1]):
            continue  # another row of the batch changed
        text = frame_text(trajectory, frame, token_text, row, highlight=interactive, positions=positions)
        header = "start" if step < 0 else f"step {step + 1}"
        stream.write(f"{CLEAR_SCREEN if interactive else ''}--- {header} ---\n{text}\n")
        stream.flush()
        if interactive:
            time.sleep(delay)


def save_trajectory_png(
    trajectory: Trajectory, path: str | Path, *, row: int = 0, title: str = "", positions: slice = slice(None)
) -> Path:
    """Positions (x) against recorded steps (y), coloured by state (the legend names those the run's process can
    show); written atomically."""
    states = trajectory.states(row)[:, positions]  # (F, L)
    changed = torch.ones(len(states), dtype=torch.bool)
    changed[1:] = (trajectory.frames[1:, row, positions] != trajectory.frames[:-1, row, positions]).any(-1)
    states = states[changed].numpy()  # frames where this row changed
    width = max(6.0, min(16.0, 2.0 + 0.06 * states.shape[1]))
    figure = Figure(figsize=(width, max(3.0, min(12.0, 2.0 + 0.08 * states.shape[0]))))
    axes = figure.add_subplot()
    shown = process_states(trajectory.process)
    colours = ListedColormap(STATE_COLOURS)
    axes.imshow(states, cmap=colours, vmin=0, vmax=len(STATE_COLOURS) - 1, aspect="auto", interpolation="nearest")
    axes.set_xlabel("position")
    axes.set_ylabel("recorded step (top: start)")
    axes.set_title(title or f"denoising trajectory, {len(states) - 1} steps that changed the sequence")
    axes.legend(
        handles=[Patch(color=STATE_COLOURS[s], label=STATE_NAMES[s]) for s in shown],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        ncol=len(shown),
        fontsize="small",
    )
    return atomic_save_figure(figure, path, bbox_inches="tight")
