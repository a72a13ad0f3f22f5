import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))

SONNETS = """\
Shall I compare thee to a summer's day?
Thou art more lovely and more temperate:
Rough winds do shake the darling buds of May,
And summer's lease hath all too short a date:
Sometime too hot the eye of heaven shines,
And often is his gold complexion dimm'd;
And every fair from fair sometime declines,
By chance or nature's changing course untrimm'd;
But thy eternal summer shall not fade
Nor lose possession of that fair thou owest;
Nor shall Death brag thou wander'st in his shade,
When in eternal lines to time thou growest:
So long as men can breathe or eyes can see,
So long lives this and this gives life to thee.
"""


def sonnet_corpus(folder: Path, copies: int = 6) -> Path:
    """Four short works in `folder` (about 16 KB at 6 copies): the sonnet with its lines rotated, so that whole-work
    validation holds out text the model has not seen in that order. Enough blocks for a tiny model to learn from."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = SONNETS.splitlines(keepends=True)
    for index in range(4):
        (folder / f"work_{index}.txt").write_text("".join(lines[index:] + lines[:index]) * copies, encoding="utf-8")
    return folder


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    return sonnet_corpus(tmp_path / "corpus")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks run fastest on one thread: two threads on a shared 2-core machine were 30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: the repo's interpreter, quiet, single-threaded, offline."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"})
    env.pop("DISCRETE_DIFF_DEBUG", None)
    return env
