"""The web app's live view of a uniform-state model, on one trained here with the real Trainer: every position holds a
token from the start and may change at any step, so frames show changes (and which positions are given), never
[MASK] blanks or reveals; they are the states the library records for the same request."""

import math

import pytest
import torch
from tiny_checkpoints import uniform_text_checkpoint

from discrete_diff.app.backend import Backend, save_picture
from discrete_diff.app.live import CHANGED, GIVEN, MASKED, REVISABLE, Row
from discrete_diff.app.view import frame_html
from discrete_diff.infill import infill
from discrete_diff.noising import Uniform
from discrete_diff.pipeline import DiffusionPipeline
from discrete_diff.sampling import SamplingSettings
from discrete_diff.sampling.trajectory import REVISING_STATES

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]
PROMPT = "Shall I [MASK:20] thee"
GIVEN_TEXT = "Shall I  thee"


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> str:
    return uniform_text_checkpoint(tmp_path_factory.mktemp("uniform"))


@pytest.fixture(scope="module")
def backend(path) -> Backend:
    return Backend.load(path)


def run(backend: Backend, task: str, prompt: str | None, **values):
    """Every frame (one per step that changed the row: no frame-rate cap) and the result."""
    *frames, result = backend.run(task, prompt, values, 60.0, math.inf)
    return frames, result


def states(frame) -> list[int]:
    return [state for _, state in frame.pieces]


def test_infill_frames_show_changes_and_the_given_text_never_blanks_or_reveals(backend, path, tmp_path):
    frames, result = run(backend, "infill", PROMPT, steps=16, seed=3)
    assert [s.text for s in result.samples] == DiffusionPipeline.from_pretrained(path).infill(PROMPT, seed=3, steps=16)
    for frame in frames:
        assert frame.states == REVISING_STATES and set(states(frame)) <= set(REVISING_STATES)
        assert "".join(t for t, s in frame.pieces if s == GIVEN) == GIVEN_TEXT  # the loop said which are given
        assert len(frame.pieces) == len(GIVEN_TEXT) + 20 and "[MASK]" not in "".join(t for t, _ in frame.pieces)
        assert frame.masked == 0 and frame.progress == f"{frame.changed} changed"
        assert all(text for text, _ in frame.pieces)  # noise that is a special token is shown by its name
    assert set(states(frames[0])) == {REVISABLE, GIVEN}  # the start: noise in the blank, nothing changed yet
    for before, after in zip(frames, frames[1:], strict=False):
        changed = {i for i, (old, new) in enumerate(zip(before.pieces, after.pieces, strict=True)) if old[0] != new[0]}
        assert changed and changed == {i for i, state in enumerate(states(after)) if state == CHANGED}
    times_changed = torch.tensor([states(frame) for frame in frames[1:]]).eq(CHANGED).sum(0)  # (L,)
    assert int(times_changed.max()) >= 2  # a position changed again after it first changed: no one-way reveal
    assert "".join(t for t, _ in frames[-1].pieces) == result.samples[0].text
    page = frame_html(frames[1])
    assert 'class="dd-changed"' in page and "dd-masked" not in page and "dd-fresh" not in page
    assert "changed this step" in page and "revealed" not in page and "masked" not in page  # the legend
    assert save_picture(result, tmp_path / "trajectory.png").read_bytes()[:4] == b"\x89PNG"


def test_the_frames_are_the_states_the_library_records(backend):
    frames, _ = run(backend, "infill", PROMPT, steps=16, seed=3)
    fill = infill(backend.model, [PROMPT], settings=SamplingSettings(steps=16), seed=3, record=True).infills[0]
    recorded = fill.trajectory.states(fill.row)[:, fill.body]  # (F, L)
    assert [frame.step for frame in frames] == fill.trajectory.steps
    assert [states(frame) for frame in frames] == recorded.tolist()
    assert MASKED not in recorded  # the picture, too, shows no masked position


def test_sample_frames_start_from_noise_with_nothing_given(backend):
    frames, result = run(backend, "sample", None, num=2, length="8,24", steps=8, seed=1)
    assert len(frames[0].pieces) == 8 and set(states(frames[0])) == {REVISABLE}  # row 0: the shorter, no padding
    assert all(set(states(frame)) <= {REVISABLE, CHANGED} for frame in frames)
    assert "".join(t for t, _ in frames[-1].pieces) == result.samples[0].text


def test_noise_that_draws_the_padding_id_is_not_taken_for_padding():
    """The row's end is where its given padding starts: a blank whose noise is the padding id stays in the row."""
    pad, mask = 0, 9
    start = torch.tensor([1, 5, 6, pad, 2, pad, pad])  # framing 1 ... 2, a body of three drawn tokens, padding
    pinned = torch.tensor([True, False, False, False, True, True, True])
    row = Row(start, ([1], [2]), pad, Uniform(mask, 10), pinned)
    assert row.body == slice(1, 4) and row.states[0].tolist() == [5, 6, pad]
