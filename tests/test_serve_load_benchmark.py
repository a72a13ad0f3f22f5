"""benchmarks/serve_load.py in its smallest configuration against a real server of a tiny model trained here:
every request answered, the server's memory read every `sample every` requests, complete JSON, Markdown and the
curve's PNG; bad input is one line and exit status 2."""

import json
import sys

import pytest
from conftest import REPO, sonnet_corpus

sys.path.insert(0, str(REPO / "benchmarks"))

import serve_load  # noqa: E402


@pytest.mark.slow
def test_serve_load_smoke(tmp_path, monkeypatch, one_thread):
    pytest.importorskip("gradio")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the server process: a tiny model runs fastest on one thread
    corpus = sonnet_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    argv = ["--smoke", "--corpus", str(corpus), "--out", str(out), "--prompt", "So [MASK:6] thee"]
    assert serve_load.run([*argv, "--server-env", "MALLOC_ARENA_MAX=2"]) == 0
    result = json.loads((out / "serve_load.json").read_text())
    assert (out / "serve_load.md").read_text().startswith("# serve_load")
    assert result["server environment"] == {"MALLOC_ARENA_MAX": "2"}
    assert "server environment MALLOC_ARENA_MAX=2" in (out / "serve_load.md").read_text()
    size = serve_load.SIZES["smoke"]
    assert result["task"] == "infill" and result["requests"] == size["requests"] and result["errors"] == 0
    assert 0 < result["p50 latency s"] <= result["p95 latency s"] <= result["max latency s"] < 60
    memory = ("server RSS after one request MiB", "server RSS before MiB", "server RSS after MiB")
    assert all(100 < result[name] for name in memory)
    assert result["no errors"] is True and result["RSS growth"] == pytest.approx(
        result["server RSS after MiB"] / result["server RSS before MiB"] - 1
    )
    curve = result["memory curve"]  # the warm-up's reading, then one every `sample every` requests answered
    assert [point["requests"] for point in curve] == list(range(0, size["requests"] + 1, size["sample_every"]))
    assert curve[0]["server RSS MiB"] == result["server RSS before MiB"] and all(
        p["server RSS MiB"] > 100 for p in curve
    )
    assert (out / "serve_load.png").read_bytes()[:4] == b"\x89PNG" and "every 2 requests" in (
        out / "serve_load.md"
    ).read_text()


@pytest.mark.slow
def test_traced_memory_names_the_sites_that_grew(tmp_path, monkeypatch, one_thread):
    """--trace-memory: the server runs under tracemalloc and reports where its Python memory grew during the load."""
    pytest.importorskip("gradio")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    corpus = sonnet_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    argv = ["--smoke", "--corpus", str(corpus), "--out", str(out), "--prompt", "So [MASK:6] thee", "--trace-memory"]
    assert serve_load.run(argv) == 0
    result = json.loads((out / "serve_load.json").read_text())
    sites = result["grown sites"]
    assert 0 < len(sites) <= 15 and result["traced MiB after"] > result["traced MiB before"] >= 0
    for site in sites:  # each site is a file:line, and its share per request is its growth over the requests
        assert site["allocated at"].rsplit(":", 1)[1].isdigit() and site["called from"].rsplit(":", 1)[1].isdigit()
        assert site["bytes per request"] == pytest.approx(1024 * site["KiB"] / result["requests"])
    sizes = [abs(site["KiB"]) for site in sites]
    assert sizes == sorted(sizes, reverse=True)  # the largest changes first
    assert "Where Python memory grew during the load" in (out / "serve_load.md").read_text()


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert serve_load.common.main_guard("serve_load", serve_load.run, ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--checkpoint is required" in err[0]
    assert serve_load.common.main_guard("serve_load", serve_load.run, ["--smoke", "--clients", "0"]) == 2
    assert "--clients must be positive" in capsys.readouterr().err
    assert serve_load.common.main_guard("serve_load", serve_load.run, ["--smoke", "--server-env", "ARENAS"]) == 2
    assert "--server-env 'ARENAS': expected NAME=VALUE" in capsys.readouterr().err
