"""Objectives speak for themselves: code outside `objectives/` reads their capabilities and never asks which class
it holds; every way of decoding has its generation routine."""

import ast
import inspect

import pytest
from conftest import REPO

import discrete_diff.objectives as objectives
from discrete_diff.generation import DECODERS
from discrete_diff.objectives import Decoding, Objective

OBJECTIVE_CLASSES = {name for name in objectives.__all__ if inspect.isclass(getattr(objectives, name))}
"""Every class `discrete_diff.objectives` exports: a new objective is covered as soon as it is exported."""

OUTSIDE = [
    path
    for folder in ("discrete_diff", "benchmarks")
    for path in sorted((REPO / folder).rglob("*.py"))
    if (REPO / "discrete_diff/objectives") not in path.parents
]


def class_name(node: ast.expr) -> str | None:
    """`Name` or `module.Name` -> "Name"."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def is_type_of(node: ast.expr) -> bool:
    """`type(x)` or `x.__class__`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type":
        return True
    return isinstance(node, ast.Attribute) and node.attr == "__class__"


def class_checks(source: str, names: set[str]) -> list[int]:
    """Lines that ask whether something is one of `names`: isinstance/issubclass, or type(x) compared to one."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and class_name(node.func) in ("isinstance", "issubclass") and len(node.args) == 2:
            kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
            if any(class_name(kind) in names for kind in kinds):
                lines.append(node.lineno)
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(map(is_type_of, operands)) and any(class_name(o) in names for o in operands):
                lines.append(node.lineno)
    return lines


def test_the_check_finds_every_way_of_asking_for_a_class():
    source = "\n".join([
        "isinstance(model.objective, BlockDiffusion)",
        "isinstance(objective, (int, objectives.Autoregressive))",
        "type(model.objective) is MaskedDiffusion",
        "model.objective.__class__ == Objective",
        "isinstance(model.objective, dict)",
        "model.objective.decoding is Decoding.BLOCKS",
    ])  # fmt: skip
    assert class_checks(source, OBJECTIVE_CLASSES) == [1, 2, 3, 4]


def test_no_module_outside_objectives_asks_which_objective_it_holds():
    assert {"Objective", "MaskedDiffusion", "Autoregressive", "BlockDiffusion"} <= OBJECTIVE_CLASSES
    names = {path.relative_to(REPO).as_posix() for path in OUTSIDE}
    assert {"discrete_diff/generation.py", "discrete_diff/infill/api.py", "benchmarks/sampling.py"} <= names
    assert not any(name.startswith("discrete_diff/objectives/") for name in names)
    found = {
        f"{path.relative_to(REPO)}:{line}"
        for path in OUTSIDE
        for line in class_checks(path.read_text(encoding="utf-8"), OBJECTIVE_CLASSES)
    }
    assert not found, f"{sorted(found)}: read a capability of Objective (objectives/base.py) instead"


@pytest.mark.parametrize("objective", Objective.__subclasses__(), ids=lambda kind: kind.__name__)
def test_every_objective_says_how_it_decodes_and_generation_has_that_routine(objective: type[Objective]):
    assert isinstance(objective.decoding, Decoding) and objective.decoding in DECODERS
    assert objective.kind.startswith(("a ", "an ")) and objective.kind.endswith(" model")


def test_every_way_of_decoding_has_a_routine():
    assert set(DECODERS) == set(Decoding)
