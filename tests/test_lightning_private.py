"""The private Lightning members training relies on (no public API does the same), each pinned by the behaviour that
needs it: a Lightning upgrade that renames or changes one fails here, by name, rather than silently changing what
checkpoints hold."""

import pytest
import torch

from discrete_diff.commands.train import build_cli, fit
from discrete_diff.training.checkpoints import LastCheckpoint
from discrete_diff.training.ema import ExponentialMovingAverage

pytestmark = pytest.mark.slow  # trains tiny models


def tiny(corpus, tmp_path, *extra: str):
    args = ["--config", "tiny", "--data.init_args.corpus", str(corpus), "--trainer.enable_progress_bar", "false"]
    return build_cli([*args, "--trainer.logger.init_args.save_dir", str(tmp_path), *extra])


def test_the_last_checkpoint_state_key_is_the_one_checkpoints_were_written_with():
    # Callback._generate_state_key: resumed runs find the callback's state under this key.
    key = LastCheckpoint(every_n_train_steps=5).state_key
    assert key == "LastCheckpoint{'every_steps': 5, 'every_seconds': None}"


def test_a_save_due_at_a_validating_step_waits_for_the_validation(small_corpus, tmp_path):
    # The epoch loop's _should_check_val_fx(fit_loop._data_fetcher) tells whether the step that is ending validates.
    cli = tiny(small_corpus, tmp_path, "--trainer.max_steps", "10", "--trainer.num_sanity_val_steps", "0")
    last = next(c for c in cli.trainer.callbacks if isinstance(c, LastCheckpoint))
    saves, save = [], last._save

    def recording(trainer):
        saves.append((trainer.global_step, "val/nats_per_token" in trainer.callback_metrics))
        save(trainer)

    last._save = recording
    fit(cli)
    # every 5 steps; tiny validates every 10: step 5 saves at once, step 10 after its validation, and at the end
    assert saves == [(5, False), (10, True), (10, True)]


def test_restarting_from_the_average_puts_it_in_the_module_and_restarts_the_warm_up(small_corpus, tmp_path):
    # WeightAveraging._copy_average_to_current and its _average_model (a torch AveragedModel) have no public twin.
    cli = tiny(small_corpus, tmp_path, "--trainer.max_steps", "3")
    fit(cli)
    ema = next(c for c in cli.trainer.callbacks if isinstance(c, ExponentialMovingAverage))
    with torch.no_grad():
        for parameter in cli.model.parameters():
            parameter.add_(1.0)
    ema.restart_from_average(cli.model)
    average = dict(ema._average_model.module.named_parameters())
    assert all(torch.equal(parameter, average[name]) for name, parameter in cli.model.named_parameters())
    assert int(ema._average_model.n_averaged) == 0
