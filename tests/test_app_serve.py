"""`discrete-diff serve`: what it cannot serve is one line and exit status 2; requests beyond its bound queue."""

import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import REPO
from tiny_checkpoints import text_checkpoint

from discrete_diff.app.backend import Backend
from discrete_diff.app.scratch import Scratch
from discrete_diff.app.server import OFFLINE, ServeConfig, launch
from discrete_diff.cli import main

sys.path.insert(0, str(REPO / "benchmarks"))

from serve_load import free_port, one_request, request_data, serving  # noqa: E402


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
        (["--checkpoint", "m.ckpt", "--time-limit", "0"], "--time-limit must be positive, got 0"),
    ],
)
def test_bad_options_are_one_line_errors(capsys, args, message):
    pytest.importorskip("gradio")
    assert main(["serve", *args]) == 2
    assert message in one_line_error(capsys)


@pytest.mark.slow
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


@pytest.mark.slow
def test_generations_beyond_the_bound_wait_their_turn_and_uploads_are_refused(tmp_path, one_thread):
    """--max-concurrent 1: three requests sent at once run one after another (each holds its slot for the time its
    4,000 remasking steps take, far longer than the tolerance), all answered. Gradio's upload route takes nothing:
    the pages have no file inputs."""
    pytest.importorskip("gradio")
    checkpoint = text_checkpoint(tmp_path)
    with serving(checkpoint, tmp_path / "serve.log", "--max-concurrent", "1", env={"OMP_NUM_THREADS": "1"}) as (url, _):
        data = request_data(url, "infill", "So [MASK:6] thee", strategy="remasking", steps=4000)
        spans: list[tuple[float, float]] = []
        threads = [threading.Thread(target=lambda: spans.append(running_span(url, data))) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        upload = urllib.request.Request(
            f"{url}gradio_api/upload",
            b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\nhello\r\n--x--\r\n',
            {"Content-Type": "multipart/form-data; boundary=x"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(upload, timeout=30)
        assert "maximum allowed size of 0 bytes" in refused.value.read().decode()
    spans.sort()
    assert len(spans) == 3 and all(end - start >= 0.25 for start, end in spans)
    assert all(later[0] >= earlier[1] - 0.05 for earlier, later in zip(spans, spans[1:], strict=False))


def running_span(url: str, data: list) -> tuple[float, float]:
    """When a request's first update (its "working" notice) and its final event arrived."""
    post = urllib.request.Request(
        f"{url}gradio_api/call/infill", json.dumps({"data": data}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(post, timeout=60) as response:
        event_id = json.load(response)["event_id"]
    first = None
    with urllib.request.urlopen(f"{url}gradio_api/call/infill/{event_id}", timeout=60) as stream:
        for raw in stream:
            line = raw.decode()
            if line.startswith("event: generating") and first is None:
                first = time.monotonic()
            if line.startswith("event: complete"):
                return first, time.monotonic()
    raise AssertionError("no final event")


@pytest.mark.slow
def test_the_server_keeps_the_state_of_a_bounded_number_of_sessions(tmp_path, monkeypatch, one_thread):
    """Every API request is a Gradio session with a state of its own (a copy of the page's configuration): kept for
    10,000 sessions, it grew the server by hundreds of KiB per request. Served in this process, 3 + 1 sessions can
    have a request running or waiting; after 10 requests, each answered, the server holds exactly that many states."""
    pytest.importorskip("gradio")
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    config = ServeConfig(port=free_port(), max_concurrent=1, queue_size=3)
    blocks = launch(Backend.load(text_checkpoint(tmp_path)), config, Scratch())
    try:
        url = f"http://127.0.0.1:{config.port}/"
        data = request_data(url, "infill", "So [MASK:4] thee", steps=2)
        assert [one_request(url, "infill", data, 60) for _ in range(10)] == [None] * 10
        assert len(blocks.state_holder.session_data) == config.max_concurrent + config.queue_size
    finally:
        blocks.close()
