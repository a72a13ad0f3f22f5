"""The packaged training configs: found by name from anywhere, composed from their includes, and each text overlay
trains the default run's recipe except for what it is about."""

import logging

import pytest
from conftest import REPO

from discrete_diff.cli import main
from discrete_diff.commands.config_files import CONFIG_DIR, config_names, load_config
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.objectives import Autoregressive, BlockDiffusion

DEFAULT = "shakespeare_char"
ALWAYS = {"trainer.logger.init_args.name"}
"""Keys every config may set its own way: its log folder is named after it."""
OVERLAYS = {
    "shakespeare_genre": {"data.init_args.label_csv"},
    "shakespeare_char_ar": {"model.objective"},
    "shakespeare_char_bd3": {"model.objective"},
    # The uniform process's best prediction depends on the noise level: its network is told the time.
    "shakespeare_char_uniform": {"model.objective", "model.network.time_conditioning"},
    # Tokens of about 4 characters: shorter windows, a wider network and longer steps for the same budget.
    "shakespeare_bpe": {
        "data.init_args.tokenizer",
        "data.init_args.max_length",
        "data.init_args.batch_size",
        "model.network.d_model",
        "model.network.max_length",
        "model.optimizer.lr",
        "model.ema_decay",
        "trainer.max_steps",
        "trainer.max_time",
        "trainer.val_check_interval",
    },
}
"""Overlay -> the keys (or key prefixes) in which its composed config may differ from the default run's."""


def flat(tree: dict, prefix: str = "") -> dict:
    """{"a.b.c": leaf} of nested mappings (lists are leaves)."""
    leaves = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        leaves |= flat(value, path + ".") if isinstance(value, dict) else {path: value}
    return leaves


def covered(key: str, allowed: set[str]) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in allowed)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_a_text_overlay_trains_the_default_recipe_but_for_what_it_is_about(overlay):
    default, config = flat(load_config(DEFAULT)), flat(load_config(overlay))
    missing = object()
    differing = {key for key in default.keys() | config.keys() if default.get(key, missing) != config.get(key, missing)}
    assert {key for key in differing if not covered(key, OVERLAYS[overlay] | ALWAYS)} == set()
    assert all(any(covered(key, {prefix}) for key in differing) for prefix in OVERLAYS[overlay])  # the list is exact


def test_overlays_replace_an_objective_of_another_class_whole():
    assert load_config("shakespeare_char_ar")["model"]["objective"] == {
        "class_path": "discrete_diff.objectives.Autoregressive"
    }  # none of the default's MaskedDiffusion arguments carried over
    cli = build_cli(["--config", "shakespeare_char_ar"])
    assert isinstance(cli.model.objective, Autoregressive)


@pytest.mark.parametrize("twin", [name for name in config_names() if name.endswith("_ar")])
def test_every_ar_config_is_its_diffusion_config_with_the_autoregressive_objective(twin):
    base, config = flat(load_config(twin.removesuffix("_ar"))), flat(load_config(twin))
    missing = object()
    differing = {key for key in base.keys() | config.keys() if base.get(key, missing) != config.get(key, missing)}
    assert {key for key in differing if not covered(key, {"model.objective"} | ALWAYS)} == set()
    assert config["model.objective.class_path"] == "discrete_diff.objectives.Autoregressive"


def test_the_block_config_uses_the_measured_block_size_which_tiles_the_window():
    """Blocks of 4 won the 600 s sweep on bound and samples (benchmarks/README.md); the code's default stays 8."""
    cli = build_cli(["--config", "shakespeare_char_bd3"])
    assert isinstance(cli.model.objective, BlockDiffusion)
    assert cli.model.objective.block_size == 4 != BlockDiffusion().block_size
    assert cli.model.objective.maskings_per_sequence == BlockDiffusion().maskings_per_sequence == 1
    assert cli.datamodule.max_length % cli.model.objective.block_size == 0


def test_the_genre_config_reads_the_labels_shipped_beside_it():
    label_csv = load_config("shakespeare_genre")["data"]["init_args"]["label_csv"]
    assert label_csv == str(CONFIG_DIR / "shakespeare_genres.csv") and (CONFIG_DIR / "shakespeare_genres.csv").is_file()


def test_configs_ship_inside_the_package_and_none_is_left_at_the_top():
    assert not (REPO / "configs").exists()
    assert {"base", DEFAULT, "tiny", "distill/shakespeare_char"} <= set(config_names())
    assert all(load_config(name)["trainer"]["logger"]["init_args"]["name"] for name in config_names())


@pytest.mark.parametrize("config", [DEFAULT, "tiny.yaml", "distill/hemopexin"])
def test_a_config_is_found_by_name_from_any_folder(config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    command = ["distill", "--teacher", "t.ckpt"] if config.startswith("distill/") else ["train"]
    with pytest.raises(SystemExit) as done:
        main([*command, "--config", config, "--print_config"])
    assert done.value.code in (0, None)
    assert f"name: {config.removesuffix('.yaml').replace('/', '_')}" in capsys.readouterr().out


def test_an_unknown_config_name_is_one_line_listing_the_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "shakespeare_chr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("discrete-diff: error: --config shakespeare_chr: no such file")
    assert "shakespeare_char, shakespeare_char_ar" in err


def test_a_user_overlay_states_only_what_differs(tmp_path):
    overlay = "include: shakespeare_char\ntrainer.max_steps: 10\nmodel:\n  network: {d_model: 64}\n"
    (tmp_path / "mine.yaml").write_text(overlay)
    config, default = load_config(str(tmp_path / "mine.yaml")), load_config(DEFAULT)
    assert config["trainer"]["max_steps"] == 10 and config["trainer"]["max_time"] == default["trainer"]["max_time"]
    assert config["model"]["network"] == {**default["model"]["network"], "d_model": 64}
    assert config["model"]["objective"] == default["model"]["objective"]
    assert config["trainer"]["logger"]["init_args"]["name"] == "mine"


def test_a_file_named_like_a_packaged_config_includes_the_packaged_one(tmp_path):
    (tmp_path / "tiny.yaml").write_text("include: tiny\ntrainer.max_steps: 3\n")
    config = load_config(str(tmp_path / "tiny.yaml"))
    assert config["trainer"]["max_steps"] == 3 and config["model"] == load_config("tiny")["model"]


def test_configs_that_include_each_other_are_one_line(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("include: b\n")
    (tmp_path / "b.yaml").write_text("include: a\n")
    assert main(["train", "--config", str(tmp_path / "a.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "include each other" in err and "a.yaml -> " in err


@pytest.mark.parametrize("how", ["file", "flag"])
def test_an_old_config_with_block_length_still_trains(how, tmp_path, small_corpus, caplog):
    old = tmp_path / "old.yaml"
    window = "block_length: 32" if how == "file" else "max_length: 64"
    old.write_text(f"include: tiny\ndata:\n  init_args: {{corpus: {small_corpus}, {window}}}\n")
    flag = ["--data.init_args.block_length", "32"] if how == "flag" else []
    args = ["--config", str(old), *flag, "--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false"]
    with caplog.at_level(logging.WARNING, logger="discrete_diff.commands.config_files"):
        cli = build_cli([*args, "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")])
    notices = [record.getMessage() for record in caplog.records if "block_length" in record.getMessage()]
    assert len(notices) == 1 and "block_length is now" in notices[0] and "max_length" in notices[0]
    assert cli.datamodule.max_length == 32
    fit(cli)
    assert cli.trainer.global_step == 2
