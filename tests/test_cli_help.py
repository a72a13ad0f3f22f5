"""Every subcommand describes its own options, and only user errors become the one-line message."""

import argparse

import pytest

from discrete_diff import cli
from discrete_diff.commands import data


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_quickstart_help_shows_its_own_options(capsys):
    with pytest.raises(SystemExit) as exit_code:
        cli.main(["quickstart", "--help"])
    assert exit_code.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: discrete-diff quickstart")
    for option in ("--config", "--time-draws", "--num-samples", "--sample-length", "--steps"):
        assert option in out
    assert "discrete-diff train" in out  # where the other arguments go


@pytest.mark.parametrize("name", sorted(set(subcommands()) - {"train"}))
def test_every_option_has_a_help_text(name):
    parser = subcommands()[name]
    undocumented = [a.dest for a in parser._actions if a.help is None and a.dest != "help"]
    assert not undocumented, f"{name}: {undocumented}"


def test_generate_is_sample_under_another_name():
    commands = subcommands()
    assert commands["generate"] is commands["sample"]


def test_a_library_bug_is_a_traceback_not_a_one_line_message(monkeypatch, capsys):
    """A bare ValueError inside the library is a bug: main() must not dress it up as a user error."""

    def broken(*args, **kwargs):
        raise ValueError("an internal invariant broke")

    monkeypatch.setitem(data.FETCHERS, "shakespeare", broken)
    with pytest.raises(ValueError, match="internal invariant"):
        cli.main(["data", "shakespeare"])
    assert "error:" not in capsys.readouterr().err


def test_a_bad_library_argument_is_reported_under_its_flag(capsys):
    assert cli.main(["sample", "--checkpoint", "x.ckpt", "--strategy", "remasking", "--remask-eta", "7"]) == 2
    assert capsys.readouterr().err.strip() == "discrete-diff: error: --remask-eta must be in [0, 1], got 7.0"
