"""Training that survives faults: a run killed with SIGKILL resumes to the uninterrupted run's exact metrics, in its
own log folder; a non-finite loss or weight stops training before any checkpoint holds it."""

import json
import sys

import pytest
import torch
from conftest import REPO, sonnet_corpus
from lightning.pytorch.callbacks import Callback

from discrete_diff.cli import main
from discrete_diff.inference import read_checkpoint

sys.path.insert(0, str(REPO / "benchmarks"))

import faults  # noqa: E402

SIZE = {"steps": 40, "every": 5, "val": 10}
"""40 steps over about 21 batches an epoch: the resumed run crosses into the next epoch."""


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return faults.write_config(tmp_path_factory.mktemp("config"), SIZE)


@pytest.fixture(scope="module")
def uninterrupted(config, module_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    faults.run_to_end(faults.train_command(config, str(module_corpus), root / "runs", SIZE), root)
    return root / "runs"


@pytest.fixture(scope="module")
def module_corpus(tmp_path_factory):

    corpus = tmp_path_factory.mktemp("corpus")
    sonnet_corpus(corpus)
    return corpus


def test_a_killed_run_resumes_to_the_uninterrupted_metrics(config, module_corpus, uninterrupted, tmp_path):
    runs = tmp_path / "runs"
    command = faults.train_command(config, str(module_corpus), runs, SIZE)
    event = faults.kill_at(command, tmp_path, runs, step=12, delay=0.0)
    assert event is not None, "the run finished before it could be killed"
    last = runs / "tiny/version_0/checkpoints/last.ckpt"
    checkpoint = read_checkpoint(last)
    resumed_from = checkpoint["global_step"]
    (position,) = checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert resumed_from % SIZE["every"] == 0 and 10 <= resumed_from < event["killed_after_step"]
    assert position["epoch"] == 0 and 0 < position["position"] < faults_batches_per_epoch(uninterrupted)  # mid-epoch

    faults.run_to_end(command + ["--ckpt_path", str(last)], tmp_path)

    assert [p.relative_to(runs) for p in runs.rglob("metrics.csv")] == [
        last.parent.parent.relative_to(runs) / "metrics.csv"
    ]
    expected, got = faults.compared_values(uninterrupted), faults.compared_values(runs)
    after = {key for key in expected if key[0] >= resumed_from}
    assert any(column.startswith("val/") for _, column in after) and max(step for step, _ in after) == SIZE["steps"] - 1
    assert {key: got.get(key) for key in after} == {key: expected[key] for key in after}
    assert got.keys() == expected.keys()  # earlier rows carried over, none logged twice


def faults_batches_per_epoch(runs) -> int:
    """Batches in one training epoch, from the epoch column of the uninterrupted run's log."""
    rows = [r for r in faults.logged(runs) if r.get("train/loss")]
    return sum(1 for r in rows if r["epoch"] == "0")


class PoisonWeights(Callback):
    """Sets weights to NaN at a given step: before the step (the loss is NaN) or after it (the weights are)."""

    def __init__(self, step: int, hook: str) -> None:
        self.step, self.hook = step, hook

    def poison(self, trainer, module) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(module.network.parameters()).fill_(float("nan"))  # the token embeddings

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.hook == "start":
            self.poison(trainer, module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.hook == "end":  # after the optimizer step, before the checkpoint callback (Lightning runs it last)
            self.poison(trainer, module)


@pytest.mark.parametrize("hook, stopped_at", [("start", 7), ("end", 10)])
def test_non_finite_training_stops_and_keeps_the_last_good_checkpoint(
    hook, stopped_at, module_corpus, tmp_path, capsys
):
    poison = {
        "class_path": f"{__name__}.PoisonWeights",
        "init_args": {"step": 7 if hook == "start" else 10, "hook": hook},
    }
    args = [
        "train", "--config", "tiny", "--data.init_args.corpus", str(module_corpus),
        "--trainer.logger.init_args.save_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
        f"--trainer.callbacks+={poison}",
    ]  # fmt: skip
    assert main(args) == 1
    last = tmp_path / "tiny/version_0/checkpoints/last.ckpt"
    message = capsys.readouterr().err.strip().splitlines()[-1]
    what = "the loss is nan" if hook == "start" else "the weights are not finite"
    assert message == (
        f"discrete-diff: training stopped: {what} at step {stopped_at}{' (not saved)' if hook == 'end' else ''}; "
        f"the last good checkpoint is {last} (step 5)"
    )
    checkpoint = read_checkpoint(last)
    assert checkpoint["global_step"] == 5
    assert all(t.isfinite().all() for t in checkpoint["state_dict"].values() if t.is_floating_point())


def test_fault_benchmark_smoke(module_corpus, tmp_path):
    assert faults.run(["--smoke", "--corpus", str(module_corpus), "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "faults.json").read_text())
    assert (tmp_path / "faults.md").read_text().startswith("# faults")
    (event,) = result["events"]  # one kill at the smoke size
    assert event["resumed_from_step"] % faults.SIZES["smoke"]["every"] == 0
    assert event["steps_lost"] == event["killed_after_step"] - event["resumed_from_step"] >= 0
    summary = result["summary"]
    assert summary["identical"] and summary["values_compared"] > faults.SIZES["smoke"]["steps"]
    assert summary["values_differing"] == summary["extra"] == []
