"""Serve the pages on one host and port: the model loaded once, a bounded queue, nothing fetched from the network."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..commands.messages import user_message
from ..errors import UserInputError
from .backend import Backend
from .scratch import Scratch

OFFLINE = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
"""Gradio reads these when imported and launched: no telemetry, no version check, no model hub."""


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    max_concurrent: int = 2
    """Generations running at once, over all pages; the rest wait in the queue."""
    queue_size: int = 32
    """Requests that may wait; more are refused at once."""
    time_limit: float = 120.0
    """Seconds of generation one request may take before it is stopped."""


def launch(backend: Backend, config: ServeConfig, scratch: Scratch) -> Any:
    """The pages of `backend` served in background threads (a Gradio `Blocks`; `close()` stops them); a busy port is
    a UserInputError."""
    from . import ui  # Gradio only now: its import takes seconds and the environment (OFFLINE) must come first

    limits = ui.Limits(config.max_concurrent, config.time_limit)
    blocks = ui.build(backend, limits, scratch)
    blocks.queue(max_size=config.queue_size, default_concurrency_limit=config.max_concurrent)
    try:
        blocks.launch(
            server_name=config.host, server_port=config.port, prevent_thread_lock=True,
            **ui.launch_options(scratch, sessions=config.max_concurrent + config.queue_size),
        )  # fmt: skip
    except OSError as error:
        raise UserInputError(f"--port {config.port}: cannot serve on {config.host} ({user_message(error)})") from None
    return blocks


def serve(checkpoint: str | Path, config: ServeConfig) -> None:
    """Load the model, then serve until interrupted; a bad checkpoint or a busy port is a UserInputError."""
    os.environ.update(OFFLINE)
    backend = Backend.load(checkpoint)
    blocks = launch(backend, config, Scratch())
    print(f"{backend.describe()}\nserving on http://{config.host}:{config.port} (Ctrl-C stops)", flush=True)
    blocks.block_thread()
