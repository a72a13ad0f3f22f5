"""`discrete-diff distill` end to end: a real tiny teacher, two rounds through the CLI, students that every sampling
entry point takes with their distilled step count; resume restores the round's teacher; bad input is one line."""

import csv
import json
from pathlib import Path

import pytest
import torch
from conftest import sonnet_corpus

from discrete_diff.checkpoint_format import WEIGHTS_PREFIX
from discrete_diff.cli import main
from discrete_diff.commands.config_files import config_names
from discrete_diff.commands.distill import DistillCLI
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.denoiser import Bidirectional, DenoiserInput
from discrete_diff.generation import generate
from discrete_diff.inference import load_model, read_checkpoint
from discrete_diff.infill import infill
from discrete_diff.models import with_time_embedding
from discrete_diff.noising import Uniform
from discrete_diff.pipeline import DiffusionPipeline
from discrete_diff.sampling import SamplingSettings
from discrete_diff.training.distillation import DistillationModule

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config", "tiny", "--data.init_args.corpus", str(corpus),
        "--trainer.logger.init_args.save_dir", str(out), "--trainer.enable_progress_bar", "false", *extra,
    ]  # fmt: skip


def distill_args(corpus: Path, out: Path, teacher: str, *extra: str) -> list[str]:
    """Two rounds, 16 -> 8 -> 4 steps, three optimizer steps each (max_steps 6)."""
    rounds = ["--model.start_steps", "16", "--model.final_steps", "4", "--trainer.max_steps", "6"]
    return ["--teacher", teacher, *tiny(corpus, out, *rounds, "--trainer.val_check_interval", "3", *extra)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    sonnet_corpus(folder)
    return folder


@pytest.fixture(scope="module")
def teacher(corpus, tmp_path_factory) -> str:
    cli = build_cli(tiny(corpus, tmp_path_factory.mktemp("teacher"), "--trainer.max_steps", "10"))
    fit(cli)
    return cli.trainer.checkpoint_callback.last_model_path


@pytest.fixture(scope="module")
def distilled(corpus, teacher, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("distill")
    assert main(["distill", *distill_args(corpus, out, teacher, "--trainer.log_every_n_steps", "1")]) == 0
    return next(out.rglob("checkpoints"))


def test_rounds_halve_the_steps_and_each_student_records_its_own(distilled, teacher):
    teacher_meta = read_checkpoint(teacher)["discrete_diff"]
    for steps, round_number in ((8, 1), (4, 2)):
        meta = read_checkpoint(distilled / f"student-{steps}-steps.ckpt")["discrete_diff"]
        assert meta["data"]["sampling_steps"] == steps
        info = meta["data"]["distillation"]
        assert (info["teacher_steps"], info["round"], info["rounds"], info["divergence"]) == (
            16, round_number, 2, "reverse-kl"
        )  # fmt: skip
        assert len(info["round_seconds"]) == round_number and min(info["round_seconds"]) > 0
        assert meta["objective"] == teacher_meta["objective"] and meta["network"] == teacher_meta["network"]
        assert meta["data"]["datamodule"] == teacher_meta["data"]["datamodule"]
    assert read_checkpoint(distilled / "last.ckpt")["discrete_diff"]["data"]["sampling_steps"] == 4
    rows = [r for r in csv.DictReader(open(next(distilled.parent.rglob("metrics.csv")))) if r.get("train/loss")]
    assert [(int(r["step"]), float(r["distill/student_steps"])) for r in rows] == [
        (step, 8.0 if step < 3 else 4.0) for step in range(6)
    ]
    assert all(float(r["train/loss"]) >= 0 for r in rows)


def test_student_weights_moved_away_from_the_teacher(distilled, teacher):
    before = load_model(teacher).network.state_dict()
    after = load_model(distilled / "student-4-steps.ckpt").network.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[key], after[key]) for key in before)


def test_sample_uses_the_distilled_step_count_unless_told(distilled, capsys):
    student = str(distilled / "student-4-steps.ckpt")
    assert main(["sample", "--checkpoint", student, "--num", "1", "--length", "30"]) == 0
    assert "steps=4 " in capsys.readouterr().out
    assert main(["generate", "--checkpoint", student, "--num", "1", "--length", "30", "--steps", "7"]) == 0
    assert "steps=7 " in capsys.readouterr().out
    model = load_model(student)
    run = generate(model, [30, 30])
    assert "steps=4 " in run.records[0].description and 1 <= run.network_calls <= 4
    assert generate(model, [30], settings=SamplingSettings(steps=64)).network_calls > 4  # 30 blanks, 64 steps


def test_infill_export_and_pipeline_take_the_student(distilled, tmp_path, capsys):
    student = str(distilled / "student-4-steps.ckpt")
    assert main(["infill", "--checkpoint", student, "--prompt", "Shall I [MASK:20] thee"]) == 0
    assert capsys.readouterr().err.strip().endswith("1 fills, 4 network calls")  # 20 blanks, 4 steps: one call each
    assert main(["export", "--checkpoint", student, "--out", str(tmp_path / "student")]) == 0
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["data"]["sampling_steps"] == 4 and config["data"]["distillation"]["rounds"] == 2
    model = load_model(tmp_path / "student")
    assert model.default_settings() == SamplingSettings(steps=4)
    assert infill(model, ["Shall I [MASK:20] thee"]).network_calls == 4
    pipeline = DiffusionPipeline.from_pretrained(tmp_path / "student")
    assert "steps=4 " in pipeline.generate_records(1, 30)[0].description
    assert "steps=9 " in pipeline.generate_records(1, 30, steps=9)[0].description
    assert len(pipeline.infill("Shall I [MASK:20] thee")[0]) == len("Shall I  thee") + 20


def test_a_distilled_student_distils_further_from_its_own_step_count(distilled, corpus, tmp_path):
    """With no start_steps, the teacher's recorded step count starts the rounds: 8 -> 4 in one round."""
    student = str(distilled / "student-8-steps.ckpt")
    args = ["--teacher", student, *tiny(corpus, tmp_path, "--model.final_steps", "4", "--trainer.max_steps", "2")]
    cli = build_cli(args, cli_class=DistillCLI, model_class=DistillationModule, prog="discrete-diff distill")
    fit(cli)
    assert (cli.model.start_steps, cli.model.rounds) == (8, 1)
    assert load_model(cli.trainer.checkpoint_callback.last_model_path).sampling_steps == 4


def test_resume_restores_the_rounds_teacher(distilled, corpus, teacher, tmp_path):
    """Resuming mid-round 2 (max_steps 6 -> 8) keeps round 2's teacher: round 1's student, not the original."""
    first = load_model(distilled / "student-8-steps.ckpt").network.state_dict()
    args = distill_args(
        corpus, tmp_path, teacher, "--trainer.max_steps", "8", "--ckpt_path", str(distilled / "last.ckpt")
    )
    cli = build_cli(args, cli_class=DistillCLI, model_class=DistillationModule, prog="discrete-diff distill")
    fit(cli)
    assert cli.trainer.global_step == 8 and cli.model.round == 1
    restored = cli.model.teacher.network.state_dict()
    assert all(torch.equal(restored[key].cpu(), first[key]) for key in first)
    original = read_checkpoint(teacher)["state_dict"]
    assert any(not torch.equal(restored[key].cpu(), original[WEIGHTS_PREFIX + key]) for key in first)


def test_a_time_embedding_added_to_a_network_changes_nothing_until_trained(teacher):
    network = load_model(teacher).network
    timed = with_time_embedding(network)
    ids = torch.randint(0, network.vocab_size - 1, (3, 12), generator=torch.Generator().manual_seed(0))
    for t in (0.05, 0.5, 1.0):
        inputs = DenoiserInput(ids, Bidirectional(None), t=torch.full((3,), t))
        assert torch.equal(timed(inputs), network(inputs))
    assert timed.time_conditioned and not network.time_conditioned
    with pytest.raises(ValueError, match="time-conditioned already"):
        with_time_embedding(timed)


def test_a_student_with_its_own_time_conditioning_learns_it(corpus, teacher, tmp_path):
    """The student's time embedding starts at zero and moves; the checkpoint records a time-conditioned network, so
    the student loads with it and is called at every sampling step (no reuse of a pass: its output depends on t)."""
    args = distill_args(corpus, tmp_path, teacher, "--model.student_time_conditioning", "true")
    assert main(["distill", *args]) == 0
    student = load_model(next(tmp_path.rglob("student-4-steps.ckpt")))
    assert (
        student.network.time_conditioned
        and read_checkpoint(teacher)["discrete_diff"]["network"]
        != (read_checkpoint(next(tmp_path.rglob("student-4-steps.ckpt")))["discrete_diff"]["network"])
    )
    assert student.network.time.mlp[-1].weight.abs().sum() > 0
    assert generate(student, [30]).network_calls == 4  # 30 blanks in 4 steps: a call at each


def test_a_uniform_state_teacher_distils_through_the_same_command(corpus, tmp_path):
    """One round, 8 -> 4 steps, from a uniform-state teacher: the student keeps its objective, its weights move and
    stay finite (the last step's law is 0 at [MASK], which must not make a gradient nan), and it samples with the
    uniform process in 4 calls."""
    config = tmp_path / "uniform.yaml"
    config.write_text(
        "include: tiny\nmodel:\n  objective: {class_path: discrete_diff.objectives.UniformDiffusion}\n"
        "  network: {time_conditioning: true}\n"
    )
    teacher_args = tiny(corpus, tmp_path / "teacher", "--trainer.max_steps", "4")
    cli = build_cli(["--config", str(config), *teacher_args[2:]])  # the tiny config with a uniform-state objective
    fit(cli)
    teacher = cli.trainer.checkpoint_callback.last_model_path
    rounds = ["--model.start_steps", "8", "--model.final_steps", "4", "--trainer.max_steps", "2"]
    out = tmp_path / "distill"
    rounds += ["--trainer.val_check_interval", "2"]  # the student's uniform-state bound is validated too
    rounds += ["--model.network.time_conditioning", "true"]  # the tiny config names a network: it must be the teacher's
    assert main(["distill", "--teacher", teacher, *tiny(corpus, out, *rounds)]) == 0
    student = load_model(next(out.rglob("student-4-steps.ckpt")))
    assert isinstance(student.process, Uniform) and student.sampling_steps == 4
    before, after = load_model(teacher).network.state_dict(), student.network.state_dict()
    assert all(torch.isfinite(value).all() for value in after.values())
    assert any(not torch.equal(before[key], after[key]) for key in before)
    run = generate(student, [20, 20])
    assert run.network_calls == 4 and "steps=4 " in run.records[0].description


@pytest.mark.parametrize(
    "extra, fragments",
    [
        (["--teacher", "nowhere.ckpt"], ["--teacher nowhere.ckpt: no checkpoint or model directory there"]),
        (["--model.final_steps", "5"], ["model.final_steps 5", "16 steps must halve to it"]),
        (["--trainer.max_steps", "1"], ["trainer.max_steps 1", "takes 2 rounds"]),
        (["--model.network.d_model", "64"], ["model.network differs from the teacher's"]),
        (["--model.divergence", "kl"], ["divergence 'kl' is unknown"]),
    ],
    ids=["missing-teacher", "steps-not-halving", "too-few-steps", "other-network", "divergence"],
)
def test_bad_input_is_one_line(corpus, teacher, tmp_path, capsys, extra, fragments):
    assert main(["distill", *distill_args(corpus, tmp_path, teacher), *extra]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("discrete-diff: error: ")
    assert all(fragment in error for fragment in fragments), error


def test_teacher_of_another_vocabulary_is_refused(teacher, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "work.txt").write_text("0123456789 abcdefghij\n" * 400)
    assert main(["distill", *distill_args(other, tmp_path, teacher)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "its vocabulary" in error and "is not the data's" in error


@pytest.mark.parametrize("config", [name for name in config_names() if name.startswith("distill/")])
def test_every_distill_config_parses(config, capsys):
    with pytest.raises(SystemExit) as done:
        main(["distill", "--config", config, "--teacher", "t.ckpt", "--print_config"])
    assert done.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "teacher: t.ckpt" in printed and "final_steps:" in printed and "class_path" in printed
