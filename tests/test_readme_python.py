"""The README's Python example runs as written against a real (tiny) checkpoint and does what its comments say."""

import ast
import re

from conftest import REPO
from tiny_checkpoints import text_checkpoint


def readme_example() -> str:
    section = (REPO / "README.md").read_text().split("## Python\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_samples_infills_and_loads(tmp_path, capsys):
    code = readme_example()
    path = text_checkpoint(tmp_path)
    # Only the checkpoint path and a length inside the tiny model's 64 positions differ from the README.
    code = re.sub(r'checkpoint = "[^"]+"', f"checkpoint = {path!r}", code).replace("length=128", "length=48")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    samples, fills = (ast.literal_eval(line) for line in capsys.readouterr().out.splitlines())
    assert len(samples) == 2 and all(0 < len(sample) <= 48 for sample in samples)  # up to a drawn [EOS]
    assert len(fills) == 2 and all(re.fullmatch(r"Shall I compare thee to a .{6} day\?", fill, re.S) for fill in fills)
    assert [record.text for record in namespace["records"]] == namespace["pipe"].generate(num=2, seed=0)
    assert namespace["model"].domain.name == "text" and namespace["pipe"].labels == []
