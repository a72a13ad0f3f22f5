"""Recording the trajectory of a sampling run, and rendering it on a terminal and as a PNG."""

import io

import pytest
import torch
from toy import ExactDenoiser, ToyDistribution

from discrete_diff.sampling import STRATEGIES, run_sampler
from discrete_diff.sampling.render import frame_text, render_terminal, save_trajectory_png
from discrete_diff.schedules import LogLinearSchedule

LETTERS = "abc"


def recorded(name="first-hitting", steps=6):
    toy = ToyDistribution(vocab=3, length=4, seed=0)
    tokens = torch.tensor([[toy.mask_id, 2, toy.mask_id, toy.mask_id]])
    result = run_sampler(
        ExactDenoiser(toy),
        tokens,
        mask_id=toy.mask_id,
        strategy=STRATEGIES[name](),
        num_steps=steps,
        schedule=LogLinearSchedule(),
        record=True,
    )
    return toy, result


def test_first_hitting_records_one_reveal_per_step_at_decreasing_times():
    _, result = recorded()
    trajectory = result.trajectory
    assert trajectory.steps == [-1, 0, 1, 2]
    assert torch.equal(trajectory.frames[-1], result.tokens)
    states = trajectory.states()  # (F, L)
    assert (states[1:] == 2).sum(-1).tolist() == [1, 1, 1]  # exactly one fresh reveal per frame
    assert (states[:, 1] == 3).all()  # the given position
    assert sorted(trajectory.reveal_steps().tolist()) == [-1, 0, 1, 2]
    times = trajectory.times[:, 0]
    assert times[0] == 1.0 and (times[1:] < times[:-1]).all() and (times >= 0).all()


def test_terminal_view_redraws_the_sequence_as_it_fills_in():
    _, result = recorded()
    stream = io.StringIO()
    render_terminal(result.trajectory, lambda token: LETTERS[token], stream)
    blocks = stream.getvalue().split("--- ")[1:]
    assert len(blocks) == 4
    lines = [block.splitlines()[1] for block in blocks]
    assert [line.count("_") for line in lines] == [3, 2, 1, 0]
    assert lines[-1] == "".join(LETTERS[t] for t in result.tokens[0].tolist())
    assert lines[0] == "_c__"
    assert frame_text(result.trajectory, 3, lambda t: LETTERS[t]) == lines[-1]


def test_png_has_one_row_per_recorded_step(tmp_path):
    import matplotlib.image

    _, result = recorded("ancestral", steps=32)
    path = save_trajectory_png(result.trajectory, tmp_path / "out" / "trajectory.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert [p.name for p in path.parent.iterdir()] == ["trajectory.png"]  # no temporary left behind


def test_on_step_sees_the_start_and_every_recorded_frame_as_the_run_goes():
    toy = ToyDistribution(vocab=3, length=4, seed=0)
    tokens = torch.tensor([[toy.mask_id, 2, toy.mask_id, toy.mask_id], [toy.mask_id] * 4])
    for name in STRATEGIES:
        seen: list = []
        result = run_sampler(
            ExactDenoiser(toy), tokens, mask_id=toy.mask_id, strategy=STRATEGIES[name](), num_steps=6,
            schedule=LogLinearSchedule(), record=True,
            on_step=lambda ids, step, time, seen=seen: seen.append((ids.clone(), step, time.clone())),
        )  # fmt: skip
        trajectory = result.trajectory
        assert [step for _, step, _ in seen] == trajectory.steps and seen[0][1] == -1, name
        assert torch.equal(torch.stack([ids for ids, _, _ in seen]), trajectory.frames), name
        assert torch.equal(torch.stack([time for _, _, time in seen]), trajectory.times), name


class Stop(Exception):
    pass


def test_an_exception_raised_by_on_step_ends_the_run_and_propagates():
    toy = ToyDistribution(vocab=3, length=4, seed=0)
    steps = []

    def stop_after_two(ids, step, time):
        steps.append(step)
        if len(steps) == 2:
            raise Stop(step)

    with pytest.raises(Stop):
        run_sampler(
            ExactDenoiser(toy), torch.full((1, 4), toy.mask_id), mask_id=toy.mask_id,
            strategy=STRATEGIES["ancestral"](), num_steps=64, schedule=LogLinearSchedule(), on_step=stop_after_two,
        )  # fmt: skip
    assert len(steps) == 2 and steps[0] == -1
