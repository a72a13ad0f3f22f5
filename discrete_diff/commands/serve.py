"""`discrete-diff serve --checkpoint C`: a local web app for the model (the optional `app` extra)."""

from __future__ import annotations

import argparse
import importlib.util

from ..errors import UserInputError

NAME = "serve"
HELP = "a local web app: samples, blanks, proteins and motif scaffolds, with a live view of the denoising"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a .ckpt or an exported model directory")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--max-concurrent", type=int, default=2, help="generations running at once; the rest queue")
    parser.add_argument("--queue-size", type=int, default=32, help="requests that may wait; more are refused")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds one generation may take")
    parser.add_argument(
        "--animation-seconds", type=float, default=2.0, help="how long the live view replays a run (0: no replay)"
    )


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise UserInputError("the web app is an optional extra: pip install 'discrete-diff[app]'")
    if not 0 <= args.port <= 65535:
        raise UserInputError(f"--port {args.port}: expected 0 to 65535")
    if args.max_concurrent < 1 or args.queue_size < 1:
        raise UserInputError("--max-concurrent and --queue-size must be at least 1")
    if not args.time_limit > 0 or args.animation_seconds < 0:
        raise UserInputError("--time-limit must be positive and --animation-seconds not negative")
    from ..app.server import ServeConfig, serve

    config = ServeConfig(
        args.host, args.port, args.max_concurrent, args.queue_size, args.time_limit, args.animation_seconds
    )
    serve(args.checkpoint, config)
    return 0
