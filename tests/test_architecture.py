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

LAYERS = {
    "foundations": (
        *("errors", "atomic_files", "schedules", "time_densities", "specs", "tokenizer_io", "checkpoint_format"),
        *("token_cache", "package_data", "model_files", "attention_kernels"),
    ),
    "process": ("process", "batch", "denoiser", "labels", "noising"),
    "objectives": ("objectives",),
    "models": ("models",),
    "sampling": ("sampling",),
    "domains": ("templates", "domain", "text", "protein", "domain_registry"),
    "inference": ("inference", "generation", "block_generation", "infill", "protein_report"),
    "training": ("training",),
    "transformers": ("hf",),
    "pipeline": ("pipeline", ""),  # "": the package's own __init__, whose public names include the pipeline
    "command line": ("cli", "__main__", "commands", "app"),
}
"""ARCHITECTURE.md's layer table, top to bottom: each layer's modules (a package stands for all its modules)."""

MAY_IMPORT = {
    "foundations": (),
    "process": ("foundations",),
    "objectives": ("foundations", "process"),
    "models": ("foundations", "process"),
    "sampling": ("foundations", "process", "models.kv_cache"),  # of the models, only the key-value cache
    "domains": ("foundations", "process"),
    "inference": ("foundations", "process", "objectives", "models", "sampling", "domains"),
    "training": ("foundations", "process", "objectives", "models", "sampling", "domains", "inference"),
    "transformers": ("foundations", "process", "objectives", "models", "sampling", "domains", "inference"),
    "pipeline": ("foundations", "process", "objectives", "models", "sampling", "domains", "inference", "transformers"),
    "command line": tuple(LAYERS),
}
"""The table's last column: layers (or single modules) each layer may import besides its own."""


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of every import in a file, relative ones resolved. Imports inside functions count too: a
    deferred import is still a dependency, and the layer order is about what a module needs."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
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


def layer_of(module: str) -> str:
    """The layer of a module (`discrete_diff.` left off): the longest table entry it equals or lies inside."""
    entries = [(entry, layer) for layer, members in LAYERS.items() for entry in members]
    matches = [(entry, layer) for entry, layer in entries if module == entry or module.startswith(entry + ".")]
    assert matches, f"discrete_diff.{module} is in no layer: add it to ARCHITECTURE.md's table and to LAYERS here"
    return max(matches, key=lambda match: len(match[0]))[1]


def own_modules() -> dict[str, Path]:
    return {module_name(p).removeprefix("discrete_diff").removeprefix("."): p for p in PACKAGE.rglob("*.py")}


def test_every_module_imports_only_the_layers_its_row_lists():
    modules = own_modules()
    wrong = []
    for name, path in sorted(modules.items()):
        layer = layer_of(name)
        allowed = {layer, *MAY_IMPORT[layer]}
        for target in sorted(m.removeprefix("discrete_diff.") for m in imports(path)):
            if target in modules and target != name and layer_of(target) not in allowed and target not in allowed:
                wrong.append(f"{name} ({layer}) imports {target} ({layer_of(target)})")
    assert not wrong, "\n".join(wrong)


def test_the_table_names_only_modules_that_exist():
    modules = own_modules()
    for layer, members in LAYERS.items():
        for entry in members:
            assert entry in modules, f"{layer}: no module or package discrete_diff.{entry}"


def test_only_training_and_the_command_line_import_lightning_and_only_the_command_line_argparse():
    for name, path in own_modules().items():
        layer = layer_of(name)
        forbidden = () if layer == "command line" else ("argparse",)
        forbidden += () if layer in ("training", "command line") else ("lightning", "pytorch_lightning")
        bad = [m for m in imports(path) if m.split(".")[0] in forbidden]
        assert not bad, f"{path.relative_to(REPO)} ({layer}) imports {bad}"


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
