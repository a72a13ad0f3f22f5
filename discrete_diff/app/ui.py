"""The pages, built with Gradio: one tab per task of the loaded model's domain, its inputs made from the task's
CLI options (`Backend.settings`), so a new option of the CLI appears here without a change to this file."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .backend import Backend, RequestError, save_picture
from .live import Frame
from .native_memory import release_freed_memory
from .scratch import Scratch
from .tasks import Setting, Task
from .view import CSS, frame_html, samples_html, status_html

THEME = gr.themes.Default(
    font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)
"""System fonts only: the default theme would fetch its fonts from Google, and the app must work offline."""
SAMPLING = "Sampling settings (the command line's options and defaults)"
CONCURRENCY_ID = "generation"  # every task's event shares one bound on concurrent generations


@dataclass(frozen=True)
class Limits:
    max_concurrent: int
    time_limit: float


def _widget(task: Task, setting: Setting) -> gr.components.Component:
    """A field labelled in words; its hint names the command line's flag, then the flag's help."""
    hint = f"{setting.flag}: {setting.help}" if setting.help else setting.flag
    options: dict[str, Any] = dict(label=setting.label, info=hint, elem_id=f"{task.name}-{setting.name}")
    if setting.kind == "flag":
        return gr.Checkbox(value=bool(setting.default), **options)
    if setting.kind == "choice":  # an empty choice (e.g. no label) is shown as "(none)"
        choices = [(choice or "(none)", choice) for choice in setting.choices]
        return gr.Dropdown(choices=choices, value=setting.default, **options)
    if setting.kind in ("int", "float") and setting.default is not None:
        return gr.Number(value=setting.default, precision=0 if setting.kind == "int" else None, **options)
    # Unset by default (length, top-k, ...; the help says what that means): a number field would send 0 for empty,
    # a text field sends "" (= unset).
    return gr.Textbox(value=setting.default or "", placeholder="default", **options)


def _handler(backend: Backend, task: Task, names: list[str], outputs: dict[str, Any], limits: Limits, scratch: Scratch):
    """A generator for Gradio: a working notice, the live frames as the run makes them, then the result (or the
    one-line error); at its end, stopped or not, the memory the run freed is released (`native_memory`)."""
    status, live, results, picture = outputs["status"], outputs["live"], outputs["results"], outputs["picture"]
    fasta = outputs.get("fasta")
    cleared = {live: "", results: "", picture: None, **({fasta: None} if fasta is not None else {})}

    def run(*inputs: Any) -> Iterator[dict]:
        text = inputs[0] if task.input_label else None
        values = dict(zip(names, inputs[1:] if task.input_label else inputs, strict=True))
        yield {status: status_html("working…"), **cleared}
        try:
            for event in backend.run(task.name, text, values, limits.time_limit):
                if isinstance(event, Frame):
                    step = "start" if event.step < 0 else f"after step {event.step + 1}"
                    yield {status: status_html(f"denoising: {step}, {event.progress}"), live: frame_html(event)}
                    continue
                folder = scratch.folder()
                update = {status: status_html(event.summary), results: samples_html(event.samples, event.command)}
                drawn = save_picture(event, folder / "trajectory.png")
                update[picture] = None if drawn is None else str(drawn)
                if fasta is not None:
                    update[fasta] = str(event.write_records(folder / f"{task.name}.fasta"))
                yield update
        except RequestError as error:
            yield {status: status_html(f"error: {error}", error=True), **cleared}
        finally:
            release_freed_memory()  # what the run freed goes back to the system, not to the heap's growth

    # Named as the command's options (prompt or template first): the API's description names each input so.
    words = ([task.input_flag.removeprefix("--")] if task.input_label else []) + names
    parameters = [inspect.Parameter(word, inspect.Parameter.POSITIONAL_OR_KEYWORD) for word in words]
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return run


def _page(backend: Backend, task: Task, limits: Limits, scratch: Scratch) -> None:
    inputs: list[gr.components.Component] = []
    if task.input_label:
        inputs.append(gr.Textbox(value=task.example, label=task.input_label, lines=2, elem_id=f"{task.name}-input"))
    settings = backend.settings(task)
    with gr.Row():
        inputs += [_widget(task, s) for s in settings if not s.sampling]
    with gr.Accordion(SAMPLING, open=False, elem_id=f"{task.name}-sampling"):
        with gr.Row():
            inputs += [_widget(task, s) for s in settings if s.sampling]
    names = [s.name for s in settings if not s.sampling] + [s.name for s in settings if s.sampling]
    fields = dict(zip(names, inputs[len(inputs) - len(names) :], strict=True))
    if backend.recommended_guidance is not None and {"label", "guidance_scale"} <= set(fields):
        _suggest_guidance(fields["label"], fields["guidance_scale"], backend.recommended_guidance)
    button = gr.Button(task.title, variant="primary", elem_id=f"{task.name}-run")
    outputs = {
        "status": gr.HTML(elem_id=f"{task.name}-status"),
        "live": gr.HTML(label="Live denoising", elem_id=f"{task.name}-live"),
        "results": gr.HTML(elem_id=f"{task.name}-results"),
        "picture": gr.Image(
            label="Denoising trajectory", show_label=False, type="filepath", interactive=False, height=360,
            elem_id=f"{task.name}-trajectory",
        ),
    }  # fmt: skip
    if task.domain == "protein":
        outputs["fasta"] = gr.File(label="FASTA", interactive=False, elem_id=f"{task.name}-fasta")
    button.click(
        _handler(backend, task, names, outputs, limits, scratch),
        inputs=inputs,
        outputs=list(outputs.values()),
        api_name=task.name,
        concurrency_id=CONCURRENCY_ID,
        concurrency_limit=limits.max_concurrent,
    )


def _suggest_guidance(label: gr.Dropdown, scale: gr.Number, recommended: float) -> None:
    """Choosing a label fills in the recommended guidance scale where the scale is 0; clearing the label puts an
    untouched recommendation back to 0 (guidance without a label has nothing to steer toward). In the browser
    only: no request, nothing kept on the server."""
    label.change(
        None, inputs=[label, scale], outputs=[scale], queue=False,
        js=f"(label, scale) => label ? (scale ? scale : {recommended}) : (scale == {recommended} ? 0 : scale)",
    )  # fmt: skip


def build(backend: Backend, limits: Limits, scratch: Scratch) -> gr.Blocks:
    with gr.Blocks(title="discrete-diff", analytics_enabled=False, delete_cache=(600, 600)) as blocks:
        gr.Markdown(f"### discrete-diff: {backend.describe()}")
        with gr.Tabs():
            for task in backend.tasks:
                with gr.Tab(task.title, id=task.name, elem_id=f"tab-{task.name}"):
                    _page(backend, task, limits, scratch)
    return blocks


def launch_options(scratch: Scratch, sessions: int) -> dict[str, Any]:
    """What `Blocks.launch` needs besides host and port: the offline theme and CSS, nothing shared or phoned home, and
    the state of at most `sessions` sessions kept.

    Gradio keeps a state per session (a copy of every component's configuration, with its last outputs: some
    hundreds of KiB for these pages) until 10,000 sessions, and every API request is a session of its own, so a
    server's memory grew by that much per request. The pages keep nothing between requests (no gr.State: a request
    sends all its inputs), so only the sessions that can have a request running or waiting need theirs; an older
    one that comes back gets a fresh state.
    """
    return dict(
        state_session_capacity=sessions,
        allowed_paths=[str(scratch.root)],
        max_file_size=0,  # the pages take no uploads: refuse any sent to Gradio's upload route
        theme=THEME,
        css=CSS,
        share=False,
        inbrowser=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        footer_links=[],
        show_error=False,
        quiet=True,
    )
