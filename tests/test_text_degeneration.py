"""The loop detector flags repetition loops of short units anywhere in a sample, and not prose."""

import pytest
from conftest import SONNETS

from discrete_diff.text.degeneration import in_loop, longest_periodic_run, loop_share

PROSE = "Shall I compare thee to a summer's day? Thou art more lovely and more temperate: "


@pytest.mark.parametrize(
    "text",
    [
        "the " * 8,  # 32 characters of a 4-character unit
        PROSE + "the the the the the the the the the the and so on",  # a loop in the middle
        "e" * 32,
        "\n" * 40,
        PROSE + "To be, or " * 5,  # a 10-character unit, five times (50 characters)
        "O Romeo, Romeo!" * 6,  # 15 characters, six times
    ],
)
def test_loops_of_short_units_are_caught(text):
    assert in_loop(text)


@pytest.mark.parametrize(
    "text",
    [
        SONNETS,
        PROSE,
        "the the the the",  # four words: a stutter, not yet a loop
        "e" * 31,  # one short of 32 characters
        "Never, never, never, never, never!",  # King Lear: five units of 7 but 33 < 35 characters
        "To be, or " * 4,  # four repeats of a 10-character unit
        SONNETS * 3,  # a whole poem repeated: memorisation, a unit far longer than 16 characters
        "abcdefghijklmnopq" * 6,  # 17-character unit: longer than a loop's unit
    ],
)
def test_prose_stutters_and_long_repeats_are_not_loops(text):
    assert not in_loop(text)


def test_every_line_of_the_sonnet_and_the_sonnet_itself_are_not_loops():
    assert loop_share(SONNETS.splitlines()) == 0.0


def test_the_longest_periodic_run_counts_the_whole_stretch():
    assert longest_periodic_run("xxabababyy", 2) == 6  # "ababab"
    assert longest_periodic_run("abcdef", 1) == 0
    assert longest_periodic_run("aab", 1) == 2


def test_loop_share_is_the_fraction_of_samples_in_a_loop():
    assert loop_share([PROSE, "the " * 10, SONNETS, "la" * 20]) == 0.5
    assert loop_share([]) != loop_share([])  # NaN: no samples, no share
