"""Degenerate text samples: the share caught in a repetition loop ("the the the the ...").

A sample is in a loop when some stretch of it, at least LOOP_MIN_CHARS characters long, repeats one unit of at most
LOOP_MAX_UNIT characters at least LOOP_MIN_REPEATS times in a row: the stretch has period p <= 16 (every character
equals the one p before it) and spans at least max(32, 5p) characters. Counted on the decoded characters, so one
definition serves every tokenizer, and anywhere in the sample, since diffusion samplers do not write left to right.
Prose does not loop: the rhetorical repeats it has ("Never, never, never, never, never", King Lear) stay under five
whole units or 32 characters; and a sample that repeats a whole line or verse (a unit longer than 16 characters)
is memorisation, not a loop, and is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence

LOOP_MAX_UNIT = 16
LOOP_MIN_REPEATS = 5
LOOP_MIN_CHARS = 32


def longest_periodic_run(text: str, period: int) -> int:
    """Characters in the longest stretch of `text` with this period (0 when none is longer than the period)."""
    longest = run = 0
    for i in range(period, len(text)):
        run = run + 1 if text[i] == text[i - period] else 0
        longest = max(longest, run)
    return longest + period if longest else 0


def in_loop(text: str) -> bool:
    """Whether some unit of <= LOOP_MAX_UNIT characters repeats LOOP_MIN_REPEATS times, over >= LOOP_MIN_CHARS."""
    return any(
        longest_periodic_run(text, period) >= max(LOOP_MIN_CHARS, LOOP_MIN_REPEATS * period)
        for period in range(1, LOOP_MAX_UNIT + 1)
    )


def loop_share(texts: Sequence[str]) -> float:
    """The fraction of `texts` in a loop (NaN for none)."""
    return sum(map(in_loop, texts)) / len(texts) if texts else float("nan")
