"""`discrete-diff serve` refuses what it cannot serve with one line and exit status 2, before or instead of starting."""

import socket
import sys

import pytest
from tiny_checkpoints import text_checkpoint

from discrete_diff.app.server import OFFLINE
from discrete_diff.cli import main


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("discrete-diff: error: ")
    return err


def test_without_the_app_extra_it_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)  # what `import gradio` finds when the extra is not installed
    assert main(["serve", "--checkpoint", str(tmp_path / "model.ckpt")]) == 2
    assert "pip install 'discrete-diff[app]'" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checkpoint", "missing.ckpt"], "missing.ckpt: checkpoint not found"),
        (["--checkpoint", "m.ckpt", "--port", "70000"], "--port 70000: expected 0 to 65535"),
        (["--checkpoint", "m.ckpt", "--max-concurrent", "0"], "--max-concurrent and --queue-size must be at least 1"),
        (["--checkpoint", "m.ckpt", "--time-limit", "0"], "--time-limit must be positive"),
    ],
)
def test_bad_options_are_one_line_errors(capsys, args, message):
    pytest.importorskip("gradio")
    assert main(["serve", *args]) == 2
    assert message in one_line_error(capsys)


def test_a_busy_port_is_a_one_line_error(capsys, monkeypatch, tmp_path, one_thread):
    pytest.importorskip("gradio")
    for name, value in OFFLINE.items():  # serve sets these for Gradio; monkeypatch puts the old ones back after
        monkeypatch.setenv(name, value)
    checkpoint = text_checkpoint(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--checkpoint", checkpoint, "--port", str(port)]) == 2
    assert f"--port {port}: cannot serve on 127.0.0.1" in one_line_error(capsys)
