"""The web app's backend without a browser, on tiny text and protein models trained here: its settings are the CLI's
with the library's defaults, its outputs the library's, its frames the sampling loop's steps streamed as they come,
its errors the CLI's one-line messages."""

import argparse
import math
import re
import shlex
import threading
import time

import pytest
from tiny_checkpoints import labelled_text_checkpoint, protein_checkpoint, text_checkpoint

from discrete_diff.app.backend import Backend, RequestError, Result, save_picture
from discrete_diff.app.live import FRAMES_PER_SECOND, FRESH, GIVEN, MASKED, Cancelled, Frame, LiveRun
from discrete_diff.app.tasks import LIMITS, PLACEHOLDERS, TASKS, parse_options, task_settings
from discrete_diff.cli import build_parser, main
from discrete_diff.commands.sampling_options import settings_from_args
from discrete_diff.generation import generate
from discrete_diff.inference import load_model
from discrete_diff.infill import infill
from discrete_diff.pipeline import DiffusionPipeline
from discrete_diff.protein.domain import ProteinDomain
from discrete_diff.sampling import (
    STRATEGIES,
    ConfidenceUnmasking,
    Remasking,
    SamplingSettings,
    Spans,
    ThresholdUnmasking,
)
from discrete_diff.text.domain import TextDomain

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]
PNG_MAGIC = b"\x89PNG"


@pytest.fixture(scope="module")
def text_path(tmp_path_factory) -> str:
    return text_checkpoint(tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def protein_path(tmp_path_factory) -> str:
    return protein_checkpoint(tmp_path_factory.mktemp("protein"))


@pytest.fixture(scope="module")
def text(text_path) -> Backend:
    return Backend.load(text_path)


@pytest.fixture(scope="module")
def protein(protein_path) -> Backend:
    return Backend.load(protein_path)


def run(
    backend: Backend, task: str, prompt: str | None, limit: float = 60.0, fps: float = math.inf, **values
) -> tuple[list[Frame], Result]:
    """Every event of a request; by default a frame per step (no frame-rate cap), which makes frames exact."""
    events = list(backend.run(task, prompt, values, limit, fps))
    assert all(isinstance(e, Frame) for e in events[:-1]) and isinstance(events[-1], Result)
    return events[:-1], events[-1]


def joined(pieces) -> str:
    return "".join(text for text, _ in pieces)


def states(frames: list[Frame]) -> list[list[int]]:
    return [[state for _, state in frame.pieces] for frame in frames]


def cli_error(capsys, args: list[str]) -> str:
    """The message `discrete-diff ARGS` prints after `discrete-diff: error: `."""
    assert main(args) == 2
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and line.startswith("discrete-diff: error: ")
    return line.strip().removeprefix("discrete-diff: error: ")


def test_each_domain_gets_its_own_pages(text, protein):
    assert text.domain == "text" and [t.name for t in text.tasks] == ["sample", "infill"]
    assert protein.domain == "protein" and [t.name for t in protein.tasks] == ["generate", "scaffold"]
    assert "text model" in text.describe() and "at most 64 positions" in text.describe()
    assert "at most 48 positions" in protein.describe()


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.name)
def test_settings_are_the_cli_options_with_the_defaults_it_uses(task):
    parser = argparse.ArgumentParser()
    task.command.configure(parser)
    cli = vars(parser.parse_args(PLACEHOLDERS))
    settings = {s.name: s for s in task_settings(task)}
    sampling = {name for name, s in settings.items() if s.sampling}
    assert {"strategy", "steps", "temperature", "top_k", "top_p", "repetition_penalty", "seed"} <= set(settings)
    assert {"confidence", "reveals_per_step", "remask_eta", "span_length", "inner_strategy", "threshold"} <= sampling
    assert all(cli[name] == s.default for name, s in settings.items() if not s.sampling)  # num, seed, length...
    # The sampling options' parser defaults are None: the page shows the library's, which the command then uses.
    library = SamplingSettings()
    shown = {name: settings[name].default for name in sampling}
    assert shown == {
        "strategy": "ancestral", "steps": library.steps, "temperature": library.temperature, "top_k": None,
        "top_p": None, "repetition_penalty": None, "confidence": "max-prob",
        "reveals_per_step": ConfidenceUnmasking().reveals_per_step, "remask_eta": Remasking().eta,
        "span_length": Spans().span_length, "inner_strategy": "ancestral", "threshold": ThresholdUnmasking().threshold,
        "max_per_call": ThresholdUnmasking().max_per_call, "argmax": ThresholdUnmasking().argmax,
        "guidance_scale": library.guidance_scale, "guidance_schedule": library.guidance_schedule,
        "cache": library.cache, "cache_refresh": library.cache_refresh,
    }  # fmt: skip
    assert settings_from_args(parse_options(task, shown)) == library  # the page's values as shown: the defaults
    assert settings["strategy"].choices == tuple(sorted(STRATEGIES)) and settings["strategy"].kind == "choice"
    assert settings["steps"].kind == "int" and settings["temperature"].kind == "float"
    # Labelled in words (the flag is the hint): no label is a flag, and no two fields share one.
    assert all(not s.label.startswith("-") and s.label[0].isupper() for s in settings.values())
    assert len({s.label for s in settings.values()}) == len(settings)
    assert settings["num"].label == ("Fills per prompt" if task.command.NAME == "infill" else "Number of samples")
    # Nothing that names a file, no terminal view, no batch size.
    assert not {"checkpoint", "out", "prompt_file", "trajectory_png", "watch", "prompt", "batch_size"} & set(settings)


def test_a_distilled_model_shows_and_uses_its_own_step_count(text_path):
    model = load_model(text_path)
    model.data["sampling_steps"] = 4  # what a student written by `discrete-diff distill` records
    backend = Backend(model, "student")
    for task in backend.tasks:
        assert {s.name: s.default for s in backend.settings(task)}["steps"] == 4
    _, result = run(backend, "sample", None, num=2, length="24", seed=1, steps=4)  # the page sends what it shows
    assert [s.text for s in result.samples] == DiffusionPipeline(model).generate(num=2, length=24, seed=1)
    assert int(re.search(r"(\d+) network calls", result.summary)[1]) <= 4


def test_text_infill_keeps_the_given_text_and_matches_the_pipeline(text, text_path):
    prompt = "Shall I [MASK:10] thee to a [MASK:6] day?"
    frames, result = run(text, "infill", prompt, num=2, steps=16, seed=3)
    expected = DiffusionPipeline.from_pretrained(text_path).infill(prompt, num=2, seed=3, steps=16)
    assert [s.text for s in result.samples] == expected
    for sample in result.samples:
        assert "".join(t for t, given in sample.pieces if given) == "Shall I  thee to a  day?"
        assert sample.text.startswith("Shall I ") and sample.text.endswith(" day?") and "[MASK" not in sample.text
    assert frames[0].step == -1 and frames[0].masked == 16 and frames[-1].masked == 0
    assert joined(frames[-1].pieces) == result.samples[0].text
    for frame in frames:  # given text is shown as given in every frame
        assert "".join(t for t, s in frame.pieces if s == GIVEN) == "Shall I  thee to a  day?"
    assert "2 fills, blank lengths (10, 6)," in result.summary


def row_changes(trajectory, row: int, body: slice) -> tuple[list[int], list[list[int]]]:
    """The steps and states of a recorded trajectory at which one row changed (the batch's other rows aside)."""
    ids, states = trajectory.frames[:, row, body], trajectory.states(row)[:, body]  # (F, L)
    kept = [0] + [f for f in range(1, len(ids)) if not ids[f].equal(ids[f - 1])]
    return [trajectory.steps[f] for f in kept], states[kept].tolist()


def test_the_frames_are_the_steps_the_library_records(text):
    """A frame per step that changed the row on show: exactly what the sampling loop records for the same
    request, state by state."""
    prompt = "Shall I [MASK:10] thee to a [MASK:6] day?"
    frames, _ = run(text, "infill", prompt, num=2, steps=16, seed=3)
    fill = infill(text.model, [prompt], num=2, settings=SamplingSettings(steps=16), seed=3, record=True).infills[0]
    assert ([f.step for f in frames], states(frames)) == row_changes(fill.trajectory, fill.row, fill.body)

    frames, _ = run(text, "sample", None, num=3, length="8,24", steps=8, seed=1)  # row 0: the first of the shortest
    recorded = generate(text.model, [8, 24, 8], settings=SamplingSettings(steps=8), seed=1, record=True).trajectory
    assert ([f.step for f in frames], states(frames)) == row_changes(recorded, 0, slice(0, 8))
    assert len(frames[0].pieces) == 8 and frames[0].masked == 8


def test_a_range_blank_reports_the_chosen_length(text):
    _, result = run(text, "infill", "Shall I [MASK:2-5] thee", steps=8, length_draws=2)
    assert "chosen by the NELBO of the given tokens" in result.summary
    fill = len(result.samples[0].pieces) - len("Shall I  thee")
    assert 2 <= fill <= 5 and f"blank lengths ({fill})" in result.summary


def test_samples_match_the_cli_and_the_live_view_ends_on_the_first(text, text_path):
    frames, result = run(text, "sample", None, num=2, length=24, steps=8, seed=1)
    expected = DiffusionPipeline.from_pretrained(text_path).generate(num=2, length=24, seed=1, steps=8)
    assert [s.text for s in result.samples] == expected
    assert frames[0].masked == 24 and frames[-1].masked == 0 and 2 <= len(frames) <= 9
    assert joined(frames[-1].pieces) == result.samples[0].text
    _, default = run(text, "sample", None, num=1, steps=4)  # no length: the training lengths, as in the CLI
    # 64 positions drawn (the summary counts them); the text shows those before a drawn [EOS] (--at-eos stop).
    assert len(default.samples[0].pieces) <= 64 and "1 sample, 64 characters," in default.summary


def test_frames_are_capped_per_second_and_the_last_is_always_sent(text):
    started = time.monotonic()
    frames, result = run(text, "infill", "a [MASK:40] b", fps=FRAMES_PER_SECOND, strategy="remasking", steps=1000)
    elapsed = time.monotonic() - started
    assert len(frames) <= 2 + elapsed * FRAMES_PER_SECOND  # the start, at most one per interval, the end
    assert frames[0].masked == 40 and frames[-1].masked == 0 and joined(frames[-1].pieces) == result.samples[0].text
    assert result.trajectory.frames.shape[1:] == (1, len("a  b") + 40)  # the picture still has every step
    assert len(result.trajectory.steps) > len(frames)


def test_frames_arrive_while_the_run_goes(text):
    """The first frame reaches the reader while the run waits for it: a stream, not a replay."""
    seen_first = threading.Event()

    def job(on_step):
        def watched(tokens, step, times):
            on_step(tokens, step, times)
            if step >= 0:  # the run waits here until the reader has the start frame
                assert seen_first.wait(timeout=30), "the start frame never reached the reader"

        # Every drawn token shown, as the frames show them: [EOS] as a document break, not an end.
        return generate(text.model, [16], settings=SamplingSettings(steps=8), at_eos="break", on_step=watched)

    live = LiveRun(job, 60.0, text._row, text.token_text, math.inf)
    frames = iter(live)
    first = next(frames)
    assert first.masked == 16 and live.thread.is_alive()
    seen_first.set()
    rest = list(frames)
    assert rest[-1].masked == 0 and live.result.records[0].text == joined(rest[-1].pieces)


def test_closing_the_stream_stops_the_run_at_its_next_step(text):
    live = LiveRun(
        lambda on_step: generate(text.model, [40], settings=SamplingSettings(Remasking(), steps=4000), on_step=on_step),
        60.0, text._row, text.token_text,
    )  # fmt: skip
    frames = iter(live)
    assert next(frames).masked == 40
    frames.close()  # what a page that goes away does to its request
    live.thread.join(timeout=30)
    assert not live.thread.is_alive() and isinstance(live.error, Cancelled) and live.result is None


def test_protein_generation_matches_the_cli_and_writes_its_fasta(protein, protein_path, tmp_path, capsys):
    frames, result = run(protein, "generate", None, num=3, length="12-20", seed=0, steps=20)
    records = DiffusionPipeline.from_pretrained(protein_path).generate_records(3, "12-20", seed=0, steps=20)
    assert [s.text for s in result.samples] == [r.text for r in records]
    cli = tmp_path / "cli.fasta"
    assert main(["generate", "--checkpoint", protein_path, "--num", "3", "--length", "12-20", "--steps", "20",
                 "--out", str(cli)]) == 0  # fmt: skip
    assert result.write_records(tmp_path / "app.fasta").read_text() == cli.read_text()
    assert frames[0].masked == len(frames[0].pieces) and frames[-1].masked == 0
    shortest = min(records, key=lambda r: len(r.text)).text
    assert joined(frames[-1].pieces) == shortest  # the live view shows the first-denoised (shortest) protein


def test_scaffolds_keep_their_motifs_write_the_cli_fasta_and_draw_their_trajectory(protein, protein_path, tmp_path):
    template = "[2-4]WWC[3-6]KK[1-3]"
    frames, result = run(protein, "scaffold", template, num=3, steps=12, free_motif_position=True)
    for sample in result.samples:
        assert "".join(t for t, given in sample.pieces if given) == "WWCKK"
        given = [i for i, (_, flag) in enumerate(sample.pieces) if flag]
        first, second, last = given[0], given[3], len(sample.pieces) - given[4] - 1  # the three spacers' lengths
        assert 2 <= first <= 4 and 3 <= second - first - 3 <= 6 and 1 <= last <= 3
    cli = tmp_path / "cli.fasta"
    argv = ["infill", "--checkpoint", protein_path, "--template", template, "--num", "3", "--steps", "12",
            "--free-motif-position", "--out", str(cli)]  # fmt: skip
    assert main(argv) == 0
    fasta = result.write_records(tmp_path / "scaffolds.fasta").read_text()
    assert fasta == cli.read_text() and fasta.count(">fill_") == 3 and f"prompt={template}" in fasta
    assert save_picture(result, tmp_path / "trajectory.png").read_bytes()[:4] == PNG_MAGIC
    assert all("".join(t for t, s in f.pieces if s == GIVEN) == "WWCKK" for f in frames)
    assert frames[0].masked == len(frames[0].pieces) - 5 and frames[-1].masked == 0
    assert MASKED not in {s for _, s in frames[-1].pieces}


@pytest.mark.parametrize(
    ("domain", "task", "prompt", "values", "cli"),
    [
        ("text", "infill", "Shall I [MASK:x] thee", {}, ["infill", "--prompt", "Shall I [MASK:x] thee"]),
        ("text", "infill", "Shall I [MASK:90] thee", {}, ["infill", "--prompt", "Shall I [MASK:90] thee"]),
        ("text", "infill", "no blank here", {}, ["infill", "--prompt", "no blank here"]),
        ("text", "sample", None, {"length": "500"}, ["sample", "--length", "500"]),
        ("text", "sample", None, {"strategy": "nope"}, ["sample", "--strategy", "nope"]),
        ("text", "sample", None, {"steps": 0}, ["sample", "--steps", "0"]),
        ("text", "sample", None, {"remask_eta": 0.3}, ["sample", "--remask-eta", "0.3"]),
        ("text", "sample", None, {"strategy": "remasking", "remask_eta": 7},
         ["sample", "--strategy", "remasking", "--remask-eta", "7"]),
        ("protein", "scaffold", "[5-2]WWC", {}, ["infill", "--template", "[5-2]WWC"]),
        ("protein", "scaffold", "[30]WWC[30]", {}, ["infill", "--template", "[30]WWC[30]"]),
        ("protein", "scaffold", "[3]WW1C[3]", {}, ["infill", "--template", "[3]WW1C[3]"]),
        ("protein", "generate", None, {"length": "100"}, ["generate", "--length", "100", "--out", "OUT"]),
        ("protein", "generate", None, {"length": "ten"}, ["generate", "--length", "ten", "--out", "OUT"]),
    ],
)  # fmt: skip
def test_bad_input_gets_the_cli_message(request, capsys, tmp_path, domain, task, prompt, values, cli):
    backend = request.getfixturevalue(domain)
    path = request.getfixturevalue(f"{domain}_path")
    with pytest.raises(RequestError) as caught:
        run(backend, task, prompt, **values)
    cli = [cli[0], "--checkpoint", path, *(str(tmp_path / "out.fasta") if a == "OUT" else a for a in cli[1:])]
    assert str(caught.value) == cli_error(capsys, cli)
    assert not (tmp_path / "out.fasta").exists()
    still = {"sample": {"length": 16}, "generate": {"length": "10"}}.get(task, {})
    _, result = run(backend, task, "a [MASK:2] b" if domain == "text" else "[2]WWC[2]", steps=4, **still)  # served
    assert result.samples


def test_settings_cannot_name_files_or_exceed_the_app_limits(text, tmp_path):
    for name in ("out", "checkpoint", "prompt_file", "trajectory_png"):
        with pytest.raises(RequestError, match=f"unknown setting '{name}' for samples"):
            run(text, "sample", None, **{name: str(tmp_path / "x")})
    with pytest.raises(RequestError, match="argument --steps: invalid int value"):
        run(text, "sample", None, steps=f"4 --out={tmp_path / 'x'}")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RequestError, match=f"--num 1000: the web app allows at most {LIMITS['num']}"):
        run(text, "sample", None, num=1000)
    with pytest.raises(RequestError, match="no task 'generate' for a text model"):
        run(text, "generate", None)


def test_page_values_arrive_as_the_cli_would_parse_them(text):
    # Number fields send floats, cleared fields None or "", unticked boxes False: all mean the CLI's value.
    _, typed = run(text, "sample", None, num=2.0, length="16", steps=4.0, top_k=None, top_p="", seed=5)
    _, plain = run(text, "sample", None, num=2, length="16", steps=4, seed=5)
    assert [s.text for s in typed.samples] == [s.text for s in plain.samples]
    with pytest.raises(RequestError, match="argument --num: invalid int value: '2.5'"):
        run(text, "sample", None, num=2.5)


def test_the_time_limit_stops_a_run_midway_and_the_backend_keeps_working(text):
    started = time.monotonic()
    with pytest.raises(RequestError, match="stopped: the server limits a request to 0.05 s of generation"):
        # Remasking calls the network at every one of its 4,000 steps: seconds of work, stopped after 0.05 s.
        run(text, "infill", "a [MASK:40] b", limit=0.05, strategy="remasking", steps=4000)
    assert time.monotonic() - started < 2.0
    _, result = run(text, "infill", "a [MASK:4] b", steps=4)
    assert result.samples[0].text.startswith("a ")


def test_frames_mark_only_the_tokens_that_changed_as_fresh(text):
    for fps in (math.inf, FRAMES_PER_SECOND):
        frames, _ = run(text, "infill", "Shall I [MASK:20] thee", fps=fps, steps=6)
        assert sum(s == GIVEN for _, s in frames[0].pieces) == len("Shall I  thee")
        assert FRESH not in {s for _, s in frames[0].pieces}
        for before, after in zip(frames, frames[1:], strict=False):
            pairs = enumerate(zip(before.pieces, after.pieces, strict=True))
            changed = {i for i, (old, new) in pairs if old[0] != new[0]}
            assert changed and changed == {i for i, (_, state) in enumerate(after.pieces) if state == FRESH}


def test_a_labelled_model_offers_its_labels_and_guidance(text, tmp_path, capsys):
    """A labelled model's pages offer its labels as a list ("" = none) and guidance; a model without labels offers no
    label, and guidance only where a prompt can steer it (infilling). The request runs as the CLI would."""
    labelled = Backend.load(labelled_text_checkpoint(tmp_path))
    for task in labelled.tasks:
        settings = {s.name: s for s in labelled.settings(task)}
        assert settings["label"].kind == "choice" and settings["label"].choices == ("", "comedy", "tragedy")
        assert not settings["label"].sampling and {"guidance_scale", "guidance_schedule"} <= set(settings)
    plain = {task.name: {s.name for s in text.settings(task)} for task in text.tasks}
    assert "label" not in plain["sample"] | plain["infill"]
    assert "guidance_scale" not in plain["sample"] and "guidance_scale" in plain["infill"]
    _, result = run(labelled, "sample", None, num=2, length="24", seed=1, steps=8, label="tragedy", guidance_scale=2)
    pipe = DiffusionPipeline(labelled.model)
    expected = pipe.generate(num=2, length=24, seed=1, steps=8, label="tragedy", guidance_scale=2.0)
    assert [s.text for s in result.samples] == expected
    with pytest.raises(RequestError, match="--label 'farce' is unknown; known labels: comedy, tragedy"):
        run(labelled, "sample", None, num=1, length="8", label="farce")


def reproduced(command: str, tmp_path, name: str) -> str:
    """What the command line shown under a result writes with --out: it must parse with the CLI's own parser."""
    words = shlex.split(command)
    assert words[0] == "discrete-diff"
    build_parser().parse_args(words[1:])  # a bad word would raise UserInputError here
    out = tmp_path / name
    assert main([*words[1:], "--out", str(out)]) == 0
    return out.read_text()


@pytest.mark.parametrize(
    ("domain", "task", "prompt", "values"),
    [
        ("text", "infill", "Shall I [MASK:10] thee, a [MASK:3]'s day?", {"num": 2, "steps": 16, "seed": 3}),
        ("text", "sample", None, {"num": 2, "length": "8,24", "steps": 8, "strategy": "remasking", "top_k": "5"}),
        ("protein", "scaffold", "[2-4]WWC[3-6]KK[1-3]", {"num": 3, "steps": 12, "free_motif_position": True}),
        ("protein", "generate", None, {"num": 2, "length": "12-20", "temperature": 0.8}),
    ],
)  # fmt: skip
def test_the_command_line_under_a_result_draws_the_same_samples(request, tmp_path, domain, task, prompt, values):
    backend = request.getfixturevalue(domain)
    _, result = run(backend, task, prompt, **values)
    expected = result.write_records(tmp_path / "app.out").read_text()
    assert reproduced(result.command, tmp_path, "cli.out") == expected
    words = shlex.split(result.command)
    assert words[1:4] == [{"scaffold": "infill"}.get(task, task), "--checkpoint", backend.path]
    assert ("--seed" in words) == ("seed" in values) and "--num" in words


def test_a_labelled_model_suggests_its_domains_guidance_scale(text, protein, tmp_path):
    labelled = Backend.load(labelled_text_checkpoint(tmp_path))
    assert labelled.recommended_guidance == TextDomain.recommended_guidance_scale
    assert text.recommended_guidance is None and protein.recommended_guidance is None
    assert ProteinDomain.recommended_guidance_scale > 0 and TextDomain.recommended_guidance_scale > 0
    for task in labelled.tasks:  # beside the label, not in the sampling accordion, with the advice in its hint
        scale = {s.name: s for s in labelled.settings(task)}["guidance_scale"]
        assert not scale.sampling and f"fills in {TextDomain.recommended_guidance_scale:g}" in scale.help
        assert scale.default == 0  # what the command uses without the flag: the page sends any other value
    _, result = run(labelled, "sample", None, num=2, length="24", steps=8, label="tragedy", guidance_scale=2)
    assert "--label tragedy --guidance-scale 2" in result.command
    assert reproduced(result.command, tmp_path, "cli.txt") == result.write_records(tmp_path / "app.txt").read_text()
