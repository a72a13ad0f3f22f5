"""The web app's backend without a browser, on tiny text and protein models trained here: its settings are the CLI's,
its outputs the library's, its frames a faithful replay, its errors the CLI's one-line messages."""

import argparse
import time

import pytest
from Bio import SeqIO
from tiny_checkpoints import protein_checkpoint, text_checkpoint

from discrete_diff.app.backend import (
    FRESH,
    GIVEN,
    LIMITS,
    MASKED,
    MAX_FRAMES,
    TASKS,
    Backend,
    Frame,
    RequestError,
    Result,
    save_picture,
    task_settings,
)
from discrete_diff.cli import main
from discrete_diff.hf.pipeline import REQUIRED, DiffusionPipeline
from discrete_diff.sampling import STRATEGIES

pytestmark = pytest.mark.usefixtures("one_thread")
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


def run(backend: Backend, task: str, prompt: str | None, limit: float = 60.0, **values) -> tuple[list[Frame], Result]:
    events = list(backend.run(task, prompt, values, limit))
    assert all(isinstance(e, Frame) for e in events[:-1]) and isinstance(events[-1], Result)
    return events[:-1], events[-1]


def joined(pieces) -> str:
    return "".join(text for text, _ in pieces)


def cli_error(capsys, args: list[str]) -> str:
    """The message `discrete-diff ARGS` prints after `discrete-diff: error: `."""
    assert main(args) == 2
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and line.startswith("discrete-diff: error: ")
    return line.strip().removeprefix("discrete-diff: error: ")


def test_each_domain_gets_its_own_pages(text, protein):
    sample = {s.name: s.default for s in text.settings(text.task("sample"))}
    assert sample["length"] == 64  # the CLI's 256 is more than this model's positions: the page starts at its limit
    assert text.domain == "text" and [t.name for t in text.tasks] == ["sample", "infill"]
    assert protein.domain == "protein" and [t.name for t in protein.tasks] == ["generate", "scaffold"]
    assert "text model" in text.describe() and "at most 64 positions" in text.describe()


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.name)
def test_settings_are_the_cli_options_with_its_defaults(task):
    parser = argparse.ArgumentParser()
    task.command.configure(parser)
    defaults = vars(parser.parse_args(REQUIRED))
    settings = {s.name: s for s in task_settings(task)}
    assert all(defaults[name] == s.default for name, s in settings.items())
    sampling = {name for name, s in settings.items() if s.sampling}
    assert {"strategy", "steps", "temperature", "top_k", "top_p", "repetition_penalty", "seed"} <= set(settings)
    assert {"confidence", "reveals_per_step", "remask_eta", "block_length", "inner_strategy"} <= sampling
    assert settings["strategy"].choices == tuple(sorted(STRATEGIES)) and settings["strategy"].kind == "choice"
    assert settings["steps"].kind == "int" and settings["temperature"].kind == "float"
    # Nothing that names a file, and no terminal view.
    assert not {"checkpoint", "out", "prompt_file", "trajectory_png", "watch", "prompt", "template"} & set(settings)


def test_text_infill_keeps_the_given_text_and_matches_the_pipeline(text, text_path):
    prompt = "Shall I [MASK:10] thee to a [MASK:6] day?"
    frames, result = run(text, "infill", prompt, num=2, steps=16, seed=3)
    expected = DiffusionPipeline.from_pretrained(text_path).infill(prompt, num=2, seed=3, steps=16)
    assert [s.text for s in result.samples] == expected
    for sample in result.samples:
        assert "".join(t for t, given in sample.pieces if given) == "Shall I  thee to a  day?"
        assert sample.text.startswith("Shall I ") and sample.text.endswith(" day?") and "[MASK" not in sample.text
    assert frames[0].masked == 16 and frames[-1].masked == 0
    assert joined(frames[-1].pieces) == result.samples[0].text
    masked = [f.masked for f in frames]
    assert masked == sorted(masked, reverse=True) and len(set(masked)) == len(masked)  # only changes are frames
    for frame in frames:  # given text is shown as given in every frame
        assert "".join(t for t, s in frame.pieces if s == GIVEN) == "Shall I  thee to a  day?"
    assert "2 fills, blank lengths (10, 6)," in result.summary


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
    eos = text.model.tokenizer.eos_token
    assert joined(frames[-1].pieces).replace(eos, "") == result.samples[0].text


def test_long_runs_are_cut_to_evenly_spread_frames(text):
    frames, _ = run(text, "sample", None, num=1, length=64, strategy="first-hitting")
    assert len(frames) == MAX_FRAMES and [f.index for f in frames] == list(range(MAX_FRAMES))
    assert frames[0].masked == 64 and frames[-1].masked == 0
    revealed = [64 - f.masked for f in frames]  # first-hitting reveals one position per step: 65 states, 64 shown
    assert revealed == sorted(revealed) and max(b - a for a, b in zip(revealed, revealed[1:], strict=False)) == 2


def test_protein_generation_matches_the_cli_and_writes_its_fasta(protein, protein_path, tmp_path):
    frames, result = run(protein, "generate", None, num=3, length="12-20", seed=0, steps=20)
    records = DiffusionPipeline.from_pretrained(protein_path).generate_fasta(3, "12-20", seed=0, steps=20)
    assert [s.text for s in result.samples] == [r.sequence for r in records]
    written = list(SeqIO.parse(result.write_fasta(tmp_path / "generated.fasta"), "fasta"))
    assert [str(r.seq) for r in written] == [r.sequence for r in records]
    assert written[0].description == records[0].description
    assert frames[0].masked == len(frames[0].pieces) and frames[-1].masked == 0
    shortest = min(records, key=lambda r: len(r.sequence)).sequence
    assert joined(frames[-1].pieces) == shortest  # the live view shows the first-denoised (shortest) protein


def test_scaffolds_keep_their_motifs_and_draw_their_trajectory(protein, tmp_path):
    template = "[2-4]WWC[3-6]KK[1-3]"
    frames, result = run(protein, "scaffold", template, num=3, steps=12, free_motif_position=True)
    for sample in result.samples:
        assert "".join(t for t, given in sample.pieces if given) == "WWCKK"
        given = [i for i, (_, flag) in enumerate(sample.pieces) if flag]
        first, second, last = given[0], given[3], len(sample.pieces) - given[4] - 1  # the three spacers' lengths
        assert 2 <= first <= 4 and 3 <= second - first - 3 <= 6 and 1 <= last <= 3
    fasta = result.write_fasta(tmp_path / "scaffolds.fasta").read_text()
    assert fasta.count(">scaffold_") == 3 and f"template={template}" in fasta
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
        ("text", "sample", None, {"length": 500}, ["sample", "--length", "500"]),
        ("text", "sample", None, {"strategy": "nope"}, ["sample", "--strategy", "nope"]),
        ("text", "sample", None, {"steps": 0}, ["sample", "--steps", "0"]),
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
    _, typed = run(text, "sample", None, num=2.0, length=16.0, steps=4.0, top_k=None, top_p="", seed=5)
    _, plain = run(text, "sample", None, num=2, length=16, steps=4, seed=5)
    assert [s.text for s in typed.samples] == [s.text for s in plain.samples]
    with pytest.raises(RequestError, match="argument --num: invalid int value: '2.5'"):
        run(text, "sample", None, num=2.5)


def test_the_time_limit_stops_a_run_midway_and_the_backend_keeps_working(text):
    started = time.monotonic()
    with pytest.raises(RequestError, match="stopped: the server limits a request to 0.05 s of generation"):
        # Remasking calls the network at every one of its 4,000 steps: seconds of work, stopped after 0.05 s.
        run(text, "infill", "a [MASK:40] b", limit=0.05, strategy="remasking", steps=4000)
    assert time.monotonic() - started < 1.0
    _, result = run(text, "infill", "a [MASK:4] b", steps=4)
    assert result.samples[0].text.startswith("a ")


def test_frames_mark_only_the_tokens_that_changed_as_fresh(text):
    frames, _ = run(text, "infill", "Shall I [MASK:20] thee", steps=6)
    assert sum(s == GIVEN for _, s in frames[0].pieces) == len("Shall I  thee")
    assert FRESH not in {s for _, s in frames[0].pieces}
    for before, after in zip(frames, frames[1:], strict=False):
        changed = {i for i, (old, new) in enumerate(zip(before.pieces, after.pieces, strict=True)) if old[0] != new[0]}
        assert changed and changed == {i for i, (_, state) in enumerate(after.pieces) if state == FRESH}
