"""Bad input through the CLI: one line on stderr naming the problem, exit status 2, no traceback.

Most cases call `discrete_diff.cli.main` in this process (a fresh interpreter costs 5 s each); the real entry
point (`python -m discrete_diff`) is exercised by the first corpus case and the pickle case."""

import os
import pickle
import subprocess
import sys

import pytest

from discrete_diff.cli import main


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


@pytest.fixture
def in_process(tmp_path, monkeypatch, capfd):
    """main() run in this process from tmp_path, returned like a finished subprocess."""
    monkeypatch.chdir(tmp_path)

    def run(args):
        code = main(args)
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


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
        "tiny",
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
        (b"too short\n", ["missing.txt", "shorter than one window", "max_length=64"]),
    ],
    ids=["missing", "empty", "not-utf8", "short"],
)
def test_bad_corpus(tmp_path, cli_env, in_process, content, fragments):
    corpus = tmp_path / "missing.txt"
    if content is not None:
        corpus.write_bytes(content)
    run = (lambda args: run_cli(args, tmp_path, cli_env)) if content is None else in_process
    assert_user_error(run(tiny(corpus)), *fragments)


def test_unknown_config_key(tmp_path, in_process, small_corpus):
    config = tmp_path / "bad.yaml"
    config.write_text("include: tiny\nfrobnicate: 3\n")
    assert_user_error(in_process(["train", "--config", str(config)]), "frobnicate")


def test_unknown_option_value(in_process, small_corpus):
    assert_user_error(in_process(tiny(small_corpus, "--model.network.d_modl", "8")), "d_modl")


def test_missing_resume_checkpoint(tmp_path, in_process, small_corpus):
    result = in_process(tiny(small_corpus, "--ckpt_path", str(tmp_path / "nope.ckpt")))
    assert_user_error(result, "nope.ckpt", "checkpoint not found")


@pytest.mark.parametrize("command", ["sample", "generate", "eval", "infill", "export"])
def test_checkpoint_that_does_not_exist(in_process, command):
    extra = {"infill": ["--prompt", "a [MASK:2]"], "export": ["--out", "x"]}.get(command, [])
    assert_user_error(in_process([command, "--checkpoint", "absent.ckpt", *extra]), "absent.ckpt", "not found")


def test_file_that_is_not_a_checkpoint(tmp_path, in_process):
    (tmp_path / "notes.ckpt").write_text("just some notes\n")
    assert_user_error(in_process(["sample", "--checkpoint", "notes.ckpt"]), "notes.ckpt", "not a checkpoint")


def test_pickled_code_in_a_checkpoint_is_never_run(tmp_path, cli_env):
    with open(tmp_path / "evil.ckpt", "wb") as handle:
        pickle.dump({"state_dict": Evil()}, handle)
    assert_user_error(run_cli(["sample", "--checkpoint", "evil.ckpt"], tmp_path, cli_env), "pickled objects")
    assert not (tmp_path / "pwned.txt").exists()


def test_unknown_command_and_data_set(in_process):
    assert_user_error(in_process(["frobnicate"]), "invalid choice")
    assert_user_error(in_process(["data", "atlantis"]), "unknown data set 'atlantis'")
