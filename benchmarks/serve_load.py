"""Load on `discrete-diff serve`: concurrent clients sending requests against 127.0.0.1 through the page's own API.

Latency per request (POST to the final event) as p50 / p95, errors (target: none), and the server's resident memory
after a warm-up round, then every `--sample-every` requests of the load (full: 1,000 requests, every 100; target:
the last within 10% of the warm-up's), as a table and a curve (serve_load.png). The warm-up round is one request
per client, all at once, so that the server has already run as many generations side by side as the load will:
memory that the first concurrent generations allocate once (activations, allocator pools) is not a leak; growth
past that is. The memory after a single request is reported too. The server runs in its own process, as
`discrete-diff serve`; each request streams its live view as it runs, so latency is generation and serving.

`--trace-memory` traces the server's allocations from the warm-up on (tracemalloc, benchmarks/traced_serve.py:
slower) and adds the allocation sites whose memory grew by the end of the load, with bytes per request.

Full run (about 1,000 x 64 steps of a 64-character infill: an hour or more on 2 cores):
.venv/bin/python benchmarks/serve_load.py --checkpoint runs/shakespeare_char/version_0/checkpoints/last.ckpt
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import common

from discrete_diff.atomic_files import atomic_save_figure
from discrete_diff.errors import UserInputError

SIZES = {
    "full": {"clients": 8, "requests": 1000, "sample_every": 100, "steps": 64, "train_steps": 0},
    "quick": {"clients": 4, "requests": 40, "sample_every": 10, "steps": 32, "train_steps": 40},
    "smoke": {"clients": 2, "requests": 6, "sample_every": 2, "steps": 8, "train_steps": 10},
}
"""requests: in all, shared by the clients; sample_every: requests between two readings of the server's memory."""
PROMPTS = {"text": "So long as [MASK:24] can see,", "protein": "[4-8]WWC[4-8]KK[4-8]"}
"""A request per domain: a text infill (characters every Shakespeare vocabulary has) or a motif scaffold."""
TASKS = {"text": "infill", "protein": "scaffold"}
GROWTH_TARGET = 0.10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(
    checkpoint: str, log: Path, *options: str, env: dict[str, str] | None = None, trace_to: Path | None = None
) -> Iterator[tuple[str, int]]:
    """`discrete-diff serve` in its own process on a free port (`env`: variables to add); yields its URL and process
    id once it answers. The browser tests start their servers with it too. `trace_to`: run it through
    traced_serve.py, which traces its allocations from the first SIGUSR1 and writes its readings there."""
    port = free_port()
    launcher = ["-m", "discrete_diff"]
    if trace_to is not None:
        launcher = [str(Path(__file__).with_name("traced_serve.py")), str(trace_to)]
    command = [
        sys.executable,
        *launcher,
        "serve",
        "--checkpoint",
        checkpoint,
        "--port",
        str(port),
        *options,
    ]
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def rss_mib(pid: int) -> float:
    """Resident memory of a process now (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def request_data(url: str, task: str, prompt: str, **settings: object) -> list:
    """The endpoint's inputs: the page's defaults (from Gradio's API description, whose parameters are named as the
    command's options), with the prompt (or template) and the given settings (by option name: steps=8) set."""
    with urllib.request.urlopen(f"{url}gradio_api/info", timeout=30) as response:
        parameters = json.load(response)["named_endpoints"][f"/{task}"]["parameters"]
    given = {"prompt": prompt, "template": prompt, **settings}
    return [given.get(parameter["parameter_name"], parameter["parameter_default"]) for parameter in parameters]


def one_request(url: str, task: str, data: list, timeout: float) -> str | None:
    """Send one request and read its events to the end; None when samples came back, else what went wrong."""
    post = urllib.request.Request(
        f"{url}gradio_api/call/{task}", json.dumps({"data": data}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(post, timeout=timeout) as response:
        event_id = json.load(response)["event_id"]
    event = None
    with urllib.request.urlopen(f"{url}gradio_api/call/{task}/{event_id}", timeout=timeout) as stream:
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in ("complete", "error"):
                payload = line.removeprefix("data: ")
                if event == "error":
                    return f"error event: {payload[:200]}"
                outputs = json.loads(payload)
                return None if "dd-sample" in outputs[2] else f"no samples: {outputs[0][:200]}"
    return "the event stream ended without a final event"


def load(
    url: str, task: str, data: list, clients: int, requests: int, timeout: float, every: int = 0, pid: int = 0
) -> tuple[list[float], list[str], list[tuple[int, float]]]:
    """`clients` threads sending `requests` requests in all, each client one after another; latencies (s), errors,
    and (requests answered, the server's RSS MiB then) after every `every` answered requests (0: never)."""
    latencies: list[float] = []
    errors: list[str] = []
    memory: list[tuple[int, float]] = []
    lock = threading.Lock()
    left = iter(range(requests))

    def client() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            started = time.perf_counter()
            try:
                problem = one_request(url, task, data, timeout)
            except OSError as error:
                problem = f"{type(error).__name__}: {error}"
            with lock:
                latencies.append(time.perf_counter() - started)
                if problem:
                    errors.append(problem)
                if every and len(latencies) % every == 0:
                    memory.append((len(latencies), rss_mib(pid)))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, memory


def traced_reading(pid: int, path: Path, timeout: float = 300.0) -> dict:
    """Ask the traced server for a reading (SIGUSR1) and wait for it to write `path`."""
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the traced server wrote no {path.name} in {timeout:.0f} s")
        time.sleep(0.5)
    return json.loads(path.read_text())


def environment(assignments: list[str]) -> dict[str, str]:
    """`--server-env NAME=VALUE` words as a mapping; a word without a name and "=" is a UserInputError."""
    found = {}
    for word in assignments:
        name, equals, value = word.partition("=")
        if not name or not equals:
            raise UserInputError(f"--server-env {word!r}: expected NAME=VALUE")
        found[name] = value
    return found


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def tiny_checkpoint(corpus: str, steps: int, scratch: Path) -> str:
    from discrete_diff.commands.train import build_cli, fit

    cli = build_cli(
        ["--config", "tiny", "--data.init_args.corpus", corpus,
         "--trainer.max_steps", str(steps), "--trainer.val_check_interval", str(steps),
         "--trainer.logger.init_args.save_dir", str(scratch), "--trainer.enable_progress_bar", "false"]
    )  # fmt: skip
    fit(cli)
    return cli.trainer.checkpoint_callback.last_model_path


def run(argv: list[str] | None = None) -> int:
    parser = common.parser("serve_load", __doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="the model to serve (required without --quick / --smoke)")
    parser.add_argument("--corpus", default=None, help="--quick / --smoke without a checkpoint: train the tiny model")
    parser.add_argument("--clients", type=int, default=None, help="concurrent clients (default by mode: 8)")
    parser.add_argument("--requests", type=int, default=None, help="requests in all (default by mode: 1000)")
    parser.add_argument("--sample-every", type=int, default=None, help="requests between memory readings (full: 100)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps per request")
    parser.add_argument("--prompt", default=None, help="text prompt or protein template (default by domain)")
    parser.add_argument("--max-concurrent", type=int, default=2, help="the server's bound on concurrent generations")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a request counts as failed")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="trace the server's allocations from the warm-up on and report the sites that grew by the end",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the server (repeatable), e.g. GLIBC_TUNABLES=glibc.malloc.arena_max=2",
    )
    args = parser.parse_args(argv)
    server_env = environment(args.server_env)
    size = SIZES[common.mode(args)]
    clients, requests, every, steps = (
        size[name] if getattr(args, name) is None else getattr(args, name)
        for name in ("clients", "requests", "sample_every", "steps")
    )
    for value, option in (
        (clients, "--clients"),
        (requests, "--requests"),
        (every, "--sample-every"),
        (steps, "--steps"),
    ):
        common.positive(value, option)
    with tempfile.TemporaryDirectory() as scratch:
        if args.checkpoint is None:
            if common.mode(args) == "full" or args.corpus is None:
                raise UserInputError("--checkpoint is required (or --quick / --smoke with --corpus to train one)")
            args.checkpoint = tiny_checkpoint(args.corpus, size["train_steps"], Path(scratch))
        from discrete_diff.app.backend import Backend

        domain = Backend.load(args.checkpoint).domain
        task, prompt = TASKS[domain], args.prompt or PROMPTS[domain]
        options = ["--max-concurrent", str(args.max_concurrent)]
        options += ["--queue-size", str(max(32, 2 * clients))]
        traces = Path(scratch) / "traces" if args.trace_memory else None
        if traces is not None:
            traces.mkdir()
        with serving(args.checkpoint, Path(scratch) / "serve.log", *options, env=server_env, trace_to=traces) as (
            url,
            pid,
        ):
            data = request_data(url, task, prompt, steps=steps)
            warm_up = one_request(url, task, data, args.timeout)
            if warm_up:
                raise UserInputError(f"the warm-up request failed ({warm_up}): check --prompt against the model")
            single = rss_mib(pid)
            _, warm_up_errors, _ = load(url, task, data, clients, clients, args.timeout)
            if warm_up_errors:
                raise UserInputError(f"the warm-up round failed ({warm_up_errors[0]})")
            baseline = traced_reading(pid, traces / "baseline.json") if traces is not None else None
            before = rss_mib(pid)
            started = time.perf_counter()
            latencies, errors, memory = load(url, task, data, clients, requests, args.timeout, every, pid)
            seconds = time.perf_counter() - started
            after = rss_mib(pid)
            traced = traced_reading(pid, traces / "growth-1.json") if traces is not None else None
    growth = after / before - 1
    curve = [{"requests": 0, "server RSS MiB": before, "growth": 0.0}]
    curve += [{"requests": count, "server RSS MiB": rss, "growth": rss / before - 1} for count, rss in memory]
    payload = {
        "mode": common.mode(args),
        "machine": common.machine(),
        "checkpoint": str(args.checkpoint),
        "task": task,
        "prompt": prompt,
        "steps": steps,
        "clients": clients,
        "sample every": every,
        "max concurrent": args.max_concurrent,
        "server environment": server_env,
        "requests": len(latencies),
        "errors": len(errors),
        "error examples": sorted(set(errors))[:5],
        "p50 latency s": percentile(latencies, 50),
        "p95 latency s": percentile(latencies, 95),
        "max latency s": max(latencies),
        "requests per s": len(latencies) / seconds,
        "server RSS after one request MiB": single,
        "server RSS before MiB": before,
        "server RSS after MiB": after,
        "RSS growth": growth,
        "memory curve": curve,
        "no errors": not errors,
        "memory flat within 10%": abs(growth) <= GROWTH_TARGET,
    }
    if traced is not None:
        payload["traced MiB before"], payload["traced MiB after"] = baseline["traced MiB"], traced["traced MiB"]
        payload["grown sites"] = [
            {**site, "bytes per request": 1024 * site["KiB"] / len(latencies)} for site in traced["grown"]
        ]
    plot(curve, Path(args.out) / "serve_load.png")
    path = common.write_report(args.out, "serve_load", payload, tables(payload))
    print(path.read_text())
    return 0


def plot(curve: list[dict], path: Path) -> None:
    """The server's RSS against requests answered, the warm-up's value and the 10% band around it."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    before = curve[0]["server RSS MiB"]
    axis.axhspan(before * (1 - GROWTH_TARGET), before * (1 + GROWTH_TARGET), color="#dfeedd", label="within 10%")
    axis.plot([p["requests"] for p in curve], [p["server RSS MiB"] for p in curve], marker="o", label="server RSS")
    axis.set(xlabel="requests answered after the warm-up", ylabel="resident memory (MiB)")
    axis.legend()
    figure.tight_layout()
    atomic_save_figure(figure, path)


def tables(payload: dict) -> dict[str, str]:
    latency = ["requests", "errors", "p50 latency s", "p95 latency s", "max latency s", "requests per s"]
    memory = ["server RSS after one request MiB", "server RSS before MiB", "server RSS after MiB", "RSS growth"]
    memory += ["no errors", "memory flat within 10%"]
    title = (
        f"{payload['clients']} clients, {payload['requests']} requests, {payload['task']} "
        f"({payload['steps']} steps), at most {payload['max concurrent']} generations at once"
    )
    if payload["server environment"]:
        title += ", server environment " + " ".join(f"{k}={v}" for k, v in payload["server environment"].items())
    found = {
        title: common.markdown_table([payload], latency),
        "Server memory": common.markdown_table([payload], memory),
        f"Server memory every {payload['sample every']} requests (serve_load.png)": common.markdown_table(
            payload["memory curve"], ["requests", "server RSS MiB", "growth"]
        ),
    }
    if "grown sites" in payload:
        heading = (
            "Where Python memory grew during the load (tracemalloc from the warm-up on; traced "
            f"{payload['traced MiB before']:.1f} -> {payload['traced MiB after']:.1f} MiB)"
        )
        found[heading] = common.markdown_table(
            payload["grown sites"], ["KiB", "blocks", "bytes per request", "allocated at", "called from"]
        )
    return found


if __name__ == "__main__":
    sys.exit(common.main_guard("serve_load", run))
