"""The README's screenshot: `discrete-diff serve` on a checkpoint, the Fill blanks page after one run, in Debian's
chromium through Playwright (the browser tests' helpers).

Command: `.venv/bin/python docs/screenshot.py --checkpoint runs/shakespeare_char/version_0/checkpoints/last.ckpt`
(needs `pip install -e '.[app]'` and `apt-get install chromium`); writes docs/serve.png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent / "tests"), str(DOCS.parent / "benchmarks")]

from app_browser import SERVER_ENV, chromium, open_tab, press  # noqa: E402
from serve_load import serving  # noqa: E402

from discrete_diff.atomic_files import atomic_path  # noqa: E402

PROMPT = "To be, or [MASK:12] the question: whether 'tis nobler in the [MASK:4-8] to suffer"


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--checkpoint", required=True, help="a text model's checkpoint or exported directory")
    options.add_argument("--prompt", default=PROMPT, help="what to type into Fill blanks")
    options.add_argument("--num", default="3", help="fills to draw (default 3)")
    options.add_argument("--out", default=str(DOCS / "serve.png"), help="where the PNG goes (default docs/serve.png)")
    args = options.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        with serving(args.checkpoint, scratch / "serve.log", env=SERVER_ENV) as (url, _):
            with chromium(scratch / "profile") as browser:
                page = open_tab(browser, url, "Fill blanks")
                press(page, "infill", args.prompt, num=args.num)
                page.locator("#infill-trajectory img").wait_for()
                with atomic_path(args.out, suffix=".png") as path:
                    page.screenshot(path=path, full_page=True)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
