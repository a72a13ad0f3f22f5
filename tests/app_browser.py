"""Driving `discrete-diff serve` in Debian's chromium through Playwright: open a page, run a task (servers start
with benchmarks/serve_load.py's `serving`).

Playwright's own browser download is not reachable here, so the system binary is launched by path. The browser
tests use these helpers; so does the README's screenshot (docs/screenshot.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_ENV = {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}  # tiny models: one thread each, quiet logs
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
LOCAL_SCHEMES = ("data:", "blob:")
WATCH = """task => {
    document.querySelectorAll(`#${task}-results .dd-sample, #${task}-status .dd-error`)
        .forEach(element => element.setAttribute("data-stale", ""));
    window.sawMasked = false;
    window.sawChanged = false;
    new MutationObserver(() => {
        window.sawMasked = window.sawMasked || Boolean(document.querySelector(`#${task}-live .dd-masked`));
        window.sawChanged = window.sawChanged || Boolean(document.querySelector(`#${task}-live .dd-changed`));
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""
"""Before a run: marks the samples or error on show as stale (the run's own are drawn afresh), and notes whether the
live view ever shows a masked position (a frame before the last), or one a uniform-state step changed, while it
runs."""
DONE = "#TASK-results .dd-sample:not([data-stale]), #TASK-status .dd-error:not([data-stale])"


@contextmanager
def chromium(profile: Path) -> Iterator[object]:
    """A Playwright browser context of the system chromium, with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, viewport={"width": 1200, "height": 900}
        )
        context.set_default_timeout(90_000)
        try:
            yield context
        finally:
            context.close()


def open_tab(context, url: str, title: str):
    """A new page on the server's tab `title`; `page.outside` collects requests to anywhere but the server."""
    page = context.new_page()
    page.outside = []
    page.on("request", lambda r: None if r.url.startswith((url, *LOCAL_SCHEMES)) else page.outside.append(r.url))
    page.goto(url)
    page.get_by_role("tab", name=title).click()
    return page


def press(page, task: str, text: str | None = None, **settings: str) -> None:
    """Type the prompt and settings (by option name), press the task's button and wait until it answers."""
    from playwright.sync_api import expect

    def type_into(field, value: str) -> None:
        """On a busy machine a field that has just appeared (the settings accordion opening) can be rendered with its
        default after the typing, which wipes it: type again until the value holds."""
        for _ in range(5):
            field.fill(value)
            field.blur()  # the page commits a field's value on change, which leaving the field fires
            page.wait_for_timeout(200)
            if field.input_value() == value:
                break
        expect(field).to_have_value(value)

    if text is not None:
        type_into(page.locator(f"#{task}-input textarea"), text)
    for name, value in settings.items():
        if page.locator(f"#{task}-{name}").count() == 0:  # a sampling setting: its accordion opens on demand
            page.locator(f"#{task}-sampling").get_by_text("Sampling settings").click()
        type_into(page.locator(f"#{task}-{name} input, #{task}-{name} textarea").first, value)
    if text is not None:  # opening the accordion must not have re-rendered the prompt
        expect(page.locator(f"#{task}-input textarea")).to_have_value(text)
    page.evaluate(WATCH, task)
    page.locator(f"#{task}-run").click()
    page.wait_for_selector(DONE.replace("TASK", task))
