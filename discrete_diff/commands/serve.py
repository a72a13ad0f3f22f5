"""`discrete-diff serve --checkpoint C`: a local web app for the model (the optional `app` extra)."""

from __future__ import annotations

import argparse
import importlib.util

from ..app.server import ServeConfig, serve
from ..errors import UserInputError
from .checkpoint_argument import add_checkpoint_argument

NAME = "serve"
HELP = "a local web app: samples, blanks, proteins and motif scaffolds, with a live view of the denoising"


def configure(parser: argparse.ArgumentParser) -> None:
    add_checkpoint_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    parser.add_argument("--max-concurrent", type=int, default=2, help="generations running at once; the rest queue")
    parser.add_argument("--queue-size", type=int, default=32, help="requests that may wait; more are refused")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds one generation may take")


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise UserInputError("the web app is an optional extra: pip install 'discrete-diff[app]'")
    if not 0 <= args.port <= 65535:
        raise UserInputError(f"--port {args.port}: expected 0 to 65535")
    if args.max_concurrent < 1 or args.queue_size < 1:
        raise UserInputError("--max-concurrent and --queue-size must be at least 1")
    if not args.time_limit > 0:
        raise UserInputError(f"--time-limit must be positive, got {args.time_limit:g}")
    serve(args.checkpoint, ServeConfig(args.host, args.port, args.max_concurrent, args.queue_size, args.time_limit))
    return 0
