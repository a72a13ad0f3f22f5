"""The import rules of ARCHITECTURE.md, checked on the source and in a fresh interpreter."""

import ast
import subprocess
import sys
from pathlib import Path

import torch
from conftest import REPO, SONNETS

from discrete_diff.checkpoint_format import CHECKPOINT_KEY
from discrete_diff.models import Transformer, TransformerConfig
from discrete_diff.objectives import MaskedDiffusion
from discrete_diff.specs import to_spec
from discrete_diff.text.tokenizers import CharacterTokenizer
from discrete_diff.tokenizer_io import tokenizer_to_dict

PACKAGE = REPO / "discrete_diff"

INFERENCE_SIDE = (
    *("denoiser", "batch", "process", "objectives", "models", "sampling", "templates", "domain", "domains"),
    *("inference", "generation", "infill", "pipeline", "text.domain", "protein.domain"),
)
"""Modules (or packages) that loading and sampling use: none may reach Lightning, the training layer or the CLI."""


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of every module-level import of a file (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module if node.level == 0 else ".".join(p for p in (base, node.module) if p)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from . import x` names a module
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_the_import_graph_has_no_cycles():
    edges = graph()
    # A package's __init__ re-exporting its own modules is not a cycle of meaning: drop parent -> child edges.
    edges = {a: {b for b in targets if not b.startswith(a + ".")} for a, targets in edges.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            assert state.get(target) != 1, " -> ".join([*path, node, target])
            if target not in state:
                visit(target, [*path, node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])


def test_inference_side_never_imports_lightning_training_hf_or_the_cli():
    forbidden = ("lightning", "pytorch_lightning", "discrete_diff.training", "discrete_diff.hf", "discrete_diff.cli",
                 "discrete_diff.commands", "argparse")  # fmt: skip
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path).removeprefix("discrete_diff.")
        if not any(name == side or name.startswith(side + ".") for side in INFERENCE_SIDE):
            continue
        bad = [m for m in imports(path) if m.startswith(forbidden) and not (name == "pipeline" and m == "argparse")]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


DEFERRED = {("app/server.py", "ui")}
"""(file, module) imports that must wait for a function: the web app's Gradio pages, an optional extra whose import
takes seconds and must follow the offline environment that `serve` sets."""


def test_no_import_of_our_own_modules_inside_functions():
    """In-function imports are how import cycles get hidden; there are none to hide (but the DEFERRED ones)."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom):
                        names = {(str(path.relative_to(PACKAGE)), alias.name) for alias in inner.names}
                        ours = inner.level > 0 or (inner.module or "").startswith("discrete_diff")
                        assert not ours or names <= DEFERRED, (
                            f"{path.relative_to(REPO)}:{inner.lineno} imports inside {node.name}"
                        )


LOAD_AND_SAMPLE = """
import sys
from discrete_diff.generation import generate
from discrete_diff.inference import load_model

model = load_model(sys.argv[1])
run = generate(model, [12, 12], seed=0)
assert [len(ids) for ids in run.ids] == [12, 12]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning"))
heavy += sorted(m for m in sys.modules if m.startswith(("discrete_diff.training", "discrete_diff.commands")))
print("loaded", type(model.domain).__name__, heavy)
"""


def test_loading_and_sampling_in_a_fresh_interpreter_imports_no_lightning(tmp_path, cli_env):
    tokenizer = CharacterTokenizer().build(lambda: iter([SONNETS]))
    torch.manual_seed(0)
    network = Transformer(TransformerConfig(d_model=16, n_layers=1, n_heads=2, max_length=32), len(tokenizer))
    meta = {
        "format_version": 2,
        "tokenizer": tokenizer_to_dict(tokenizer),
        "domain": {"name": "text"},
        "network": {k: v for k, v in vars(network.config).items()},
        "objective": to_spec(MaskedDiffusion()),
        "data": {"max_length": 32},
    }
    state = {f"network.{k}": v for k, v in network.state_dict().items()}
    torch.save({CHECKPOINT_KEY: meta, "state_dict": state, "global_step": 0}, tmp_path / "tiny.ckpt")
    command = [sys.executable, "-c", LOAD_AND_SAMPLE, str(tmp_path / "tiny.ckpt")]
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "loaded TextDomain []"
