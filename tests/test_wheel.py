"""The built wheel works outside the checkout: its configs are package data, found by name, and the installed
`discrete-diff` trains, samples and shows quickstart's default config from a folder that is not the repository."""

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, sonnet_corpus

from discrete_diff import __version__

pytestmark = pytest.mark.slow  # builds a wheel and trains in subprocesses (about a minute)


def run(command: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(the venv's python, its site-packages holding the wheel and the `discrete-diff` script, the environment)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so the build writes nothing into the checkout
    shutil.copytree(REPO / "discrete_diff", source / "discrete_diff", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", "PIP_NO_INPUT": "1"}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir"]
    run([*pip, "wheel", source, "--no-deps", "--no-build-isolation", "-w", root / "dist"], root, env)
    (wheel,) = (root / "dist").glob(f"discrete_diff-{__version__}-*.whl")

    # A bare venv that borrows this environment's dependencies through a .pth file (nothing downloaded); the
    # borrowed folders' own .pth files (an editable install of the checkout) are not read through it.
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], root, env)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    packages = Path(run([python, "-c", purelib], root, env).stdout.strip())
    (packages / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--target", packages, wheel], root, env)
    return python, packages, env


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    python, packages, env = installed
    code = "import discrete_diff, importlib.metadata as m; print(discrete_diff.__file__, m.version('discrete-diff'))"
    where = run([python, "-c", code], tmp_path, env).stdout.split()
    assert Path(where[0]).is_relative_to(packages) and where[1] == __version__


def test_the_wheel_trains_and_samples_from_a_folder_outside_the_checkout(installed, tmp_path):
    _, packages, env = installed
    command = packages / "bin" / "discrete-diff"  # pip --target puts scripts there
    assert "shakespeare_char" in run([command, "quickstart", "--help"], tmp_path, env).stdout

    corpus = sonnet_corpus(tmp_path / "corpus")
    train = ["train", "--config", "tiny", "--data.init_args.corpus", corpus, "--trainer.max_steps", "4"]
    run([command, *train, "--trainer.enable_progress_bar", "false"], tmp_path, env)
    checkpoint = tmp_path / "runs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()

    sample = ["sample", "--checkpoint", checkpoint, "--num", "2", "--length", "24", "--steps", "4"]
    sample = run([command, *sample], tmp_path, env)
    assert sample.stdout.count("=== ") == 2

    printed = run([command, "train", "--config", "shakespeare_genre", "--print_config"], tmp_path, env).stdout
    label_csv = next(line.split(": ", 1)[1] for line in printed.splitlines() if "label_csv:" in line)
    assert Path(label_csv) == packages / "discrete_diff" / "configs" / "shakespeare_genres.csv"
    assert Path(label_csv).is_file()
