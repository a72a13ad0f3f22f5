"""Blank length ranges on a uniform-state model trained here with the real Trainer. Choosing a range blank's length
scores it with the masked-diffusion bound of the given tokens (blanks held at [MASK]), which a uniform-state model
has no state for: that is refused with one line (CLI exit 2), through the library, the command and the web app.
What needs no scoring still works: fixed lengths, a range blank at the end (its longest), lengths drawn per fill."""

import pytest
from tiny_checkpoints import uniform_text_checkpoint

from discrete_diff.app.backend import Backend, RequestError
from discrete_diff.cli import main
from discrete_diff.errors import UserInputError
from discrete_diff.inference import load_model
from discrete_diff.infill import UniformLength, infill
from discrete_diff.sampling import SamplingSettings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]
RANGE = "Shall I [MASK:2-5] thee"
REFUSAL = (
    "prompt: the blank of 2-5 tokens would have its length chosen by the masked-diffusion bound of the given tokens, "
    "which a uniform-state diffusion model lacks"
)
STEPS = SamplingSettings(steps=4)


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> str:
    return uniform_text_checkpoint(tmp_path_factory.mktemp("uniform"))


@pytest.fixture(scope="module")
def model(path):
    return load_model(path)


def test_the_library_refuses_to_score_a_range_blank(model):
    with pytest.raises(UserInputError, match=REFUSAL) as refused:
        infill(model, [RANGE], settings=STEPS)
    assert "--free-motif-position" in str(refused.value) and "fixed length" in str(refused.value)
    with pytest.raises(UserInputError, match="prompt 2: the blank of 1-3 tokens"):  # named among several prompts
        infill(model, ["a [MASK:2] b", "a [MASK:1-3] b [MASK:4]"], settings=STEPS)


def test_fixed_lengths_a_trailing_range_and_drawn_lengths_still_fill(model):
    [fixed] = infill(model, ["Shall I [MASK:4] thee"], settings=STEPS).infills
    assert fixed.choice.lengths == (4,) and fixed.text.startswith("Shall I ") and len(fixed.text) == 17
    [trailing] = infill(model, ["Shall I [MASK:2-5]"], settings=STEPS).infills  # nothing after it: no scoring
    assert trailing.choice.lengths == (5,) and trailing.choice.scores is None
    drawn = infill(model, [RANGE], num=6, settings=STEPS, length_rule=UniformLength(), seed=1).infills
    assert all(2 <= fill.choice.lengths[0] <= 5 and fill.text.endswith(" thee") for fill in drawn)
    assert len({fill.choice.lengths for fill in drawn}) > 1


def test_the_command_refuses_with_one_line_and_draws_lengths_when_asked(path, capsys):
    assert main(["infill", "--checkpoint", path, "--prompt", RANGE, "--steps", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"discrete-diff: error: {REFUSAL}"), err
    drawn = ["infill", "--checkpoint", path, "--prompt", RANGE, "--steps", "4", "--free-motif-position", "--watch"]
    assert main(drawn) == 0
    fills, view = capsys.readouterr().out.split("--- start ---\n")
    assert "Shall I " in fills and " thee" in fills
    start = view.split("--- step")[0].rstrip("\n")  # the terminal view starts from noise: no masked placeholder
    assert start.startswith("Shall I ") and start.endswith(" thee") and "_" not in start


def test_the_web_app_shows_the_same_line(path, capsys):
    backend = Backend.load(path)
    with pytest.raises(RequestError) as refused:
        list(backend.run("infill", RANGE, {"steps": 4}, 60.0))
    assert main(["infill", "--checkpoint", path, "--prompt", RANGE]) == 2
    assert f"discrete-diff: error: {refused.value}" == capsys.readouterr().err.strip()
