"""HTML for the app's results: a frame of the live view, the finished samples, a one-line status. Every piece of
text (prompts, tokens, messages) is escaped: what a user or a model writes is shown, never interpreted."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from itertools import groupby

from .backend import Sample
from .live import CHANGED, FRESH, GIVEN, MASKED, REVEALED, REVISABLE, STATES, Frame

CLASSES = {
    MASKED: "dd-masked", REVEALED: "dd-revealed", FRESH: "dd-fresh", GIVEN: "dd-given", REVISABLE: "dd-revisable",
    CHANGED: "dd-changed",
}  # fmt: skip
PLACEHOLDER = "·"  # one character per masked position, so the sequence keeps its shape while it fills in

CSS = "\n".join(
    [
        ".dd-seq { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap;"
        " word-break: break-all; line-height: 1.6; padding: 6px 8px; border-radius: 6px; background: #fafafa;"
        " margin-bottom: 6px; color: #222; }",
        # The picture's colours: a grey block per masked position, the others as text tinted by their state.
        f".dd-masked {{ background: {STATES[MASKED][1]}; color: #8a8a8a; }}",
        f".dd-revealed {{ color: {STATES[REVEALED][1]}; }}",
        f".dd-fresh {{ color: {STATES[FRESH][1]}; background: {STATES[FRESH][1]}33; }}",
        f".dd-given {{ color: {STATES[GIVEN][1]}; background: {STATES[GIVEN][1]}22; font-weight: 600; }}",
        # A uniform-state run: every position holds a token; those this step changed are marked, underlined.
        f".dd-revisable {{ color: {STATES[REVISABLE][1]}; }}",
        f".dd-changed {{ color: {STATES[CHANGED][1]}; background: {STATES[CHANGED][1]}33;"
        " text-decoration: underline; }}",
        ".dd-legend span { margin-right: 14px; font-size: 0.9em; }",
        ".dd-legend i { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 4px; vertical-align: -1px; }",
        ".dd-heading { font-weight: 600; margin: 4px 0; }",
        ".dd-status { font-size: 0.95em; min-height: 1.4em; }",
        ".dd-error { color: #b00020; font-weight: 600; }",
        ".dd-command { margin-top: 8px; font-size: 0.9em; }",
        ".dd-command code { display: block; white-space: pre-wrap; word-break: break-all; padding: 6px 8px;"
        " border-radius: 6px; background: #f0f0f0; }",
    ]
)


def _spans(pieces: Iterable[tuple[str, int]]) -> str:
    """Runs of positions in the same state as one span each."""
    parts = []
    for state, run in groupby(pieces, key=lambda piece: piece[1]):
        texts = [PLACEHOLDER if state == MASKED else text for text, _ in run]
        parts.append(f'<span class="{CLASSES[state]}">{html.escape("".join(texts))}</span>')
    return "".join(parts)


def legend_html(states: Iterable[int]) -> str:
    """The names and colours of `states` (those a frame's run can show)."""
    items = (f'<span><i style="background:{STATES[s][1]}"></i>{html.escape(STATES[s][0])}</span>' for s in states)
    return f'<div class="dd-legend">{"".join(items)}</div>'


def frame_html(frame: Frame) -> str:
    heading = '<div class="dd-heading">Live denoising of the first sample</div>'
    return f'{heading}{legend_html(frame.states)}<div class="dd-seq dd-frame">{_spans(frame.pieces)}</div>'


def samples_html(samples: Sequence[Sample], command: str = "") -> str:
    """Each sample with its given tokens marked apart from the generated ones, then the `command` line that draws
    them in a terminal (when given)."""
    rows = []
    for index, sample in enumerate(samples):
        pieces = ((text, GIVEN if given else REVEALED) for text, given in sample.pieces)
        rows.append(f'<div class="dd-seq dd-sample" data-index="{index}">{_spans(pieces)}</div>')
    heading = f'<div class="dd-heading">{len(samples)} sample{"s" if len(samples) != 1 else ""}</div>'
    shown = (
        '<div class="dd-command">The same in a terminal:'
        f'<code class="dd-command-line">{html.escape(command)}</code></div>'
        if command
        else ""
    )
    return heading + "".join(rows) + shown


def status_html(message: str, error: bool = False) -> str:
    kind = "dd-status dd-error" if error else "dd-status"
    return f'<div class="{kind}">{html.escape(message)}</div>'
