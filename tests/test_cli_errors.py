"""Bad input through the real CLI: one line on stderr naming the problem, exit status 2, no traceback."""

import os
import pickle
import subprocess
import sys

import pytest
from conftest import REPO


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def run_cli(args, cwd, env):
    return subprocess.run(
        [sys.executable, "-m", "discrete_diff", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def assert_user_error(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("discrete-diff: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def tiny(corpus, *extra):
    return [
        "train",
        "--config",
        str(REPO / "configs/tiny.yaml"),
        "--data.init_args.corpus",
        str(corpus),
        *extra,
    ]


@pytest.mark.parametrize(
    "content, fragments",
    [
        (None, ["missing.txt", "corpus not found"]),
        (b"", ["missing.txt", "holds no text"]),
        (b"ok\n\xff\xfe broken\n", ["missing.txt", "not UTF-8", "offset 3"]),
        (b"too short\n", ["missing.txt", "shorter than one block", "block_length=64"]),
    ],
    ids=["missing", "empty", "not-utf8", "short"],
)
def test_bad_corpus(tmp_path, cli_env, content, fragments):
    corpus = tmp_path / "missing.txt"
    if content is not None:
        corpus.write_bytes(content)
    assert_user_error(run_cli(tiny(corpus), tmp_path, cli_env), *fragments)


def test_unknown_config_key(tmp_path, cli_env, small_corpus):
    config = tmp_path / "bad.yaml"
    config.write_text((REPO / "configs/tiny.yaml").read_text() + "frobnicate: 3\n")
    result = run_cli(["train", "--config", str(config)], tmp_path, cli_env)
    assert_user_error(result, "frobnicate")


def test_unknown_option_value(tmp_path, cli_env, small_corpus):
    assert_user_error(run_cli(tiny(small_corpus, "--model.network.d_modl", "8"), tmp_path, cli_env), "d_modl")


def test_missing_resume_checkpoint(tmp_path, cli_env, small_corpus):
    result = run_cli(tiny(small_corpus, "--ckpt_path", str(tmp_path / "nope.ckpt")), tmp_path, cli_env)
    assert_user_error(result, "nope.ckpt", "checkpoint not found")


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_checkpoint_that_does_not_exist(tmp_path, cli_env, command):
    assert_user_error(run_cli([command, "--checkpoint", "absent.ckpt"], tmp_path, cli_env), "absent.ckpt", "not found")


def test_file_that_is_not_a_checkpoint(tmp_path, cli_env):
    (tmp_path / "notes.ckpt").write_text("just some notes\n")
    assert_user_error(
        run_cli(["sample", "--checkpoint", "notes.ckpt"], tmp_path, cli_env), "notes.ckpt", "not a checkpoint"
    )


def test_pickled_code_in_a_checkpoint_is_never_run(tmp_path, cli_env):
    with open(tmp_path / "evil.ckpt", "wb") as handle:
        pickle.dump({"state_dict": Evil()}, handle)
    assert_user_error(run_cli(["sample", "--checkpoint", "evil.ckpt"], tmp_path, cli_env), "pickled objects")
    assert not (tmp_path / "pwned.txt").exists()


def test_unknown_command_and_data_set(tmp_path, cli_env):
    assert_user_error(run_cli(["frobnicate"], tmp_path, cli_env), "invalid choice")
    assert_user_error(run_cli(["data", "atlantis"], tmp_path, cli_env), "unknown data set 'atlantis'")
