"""The import graph of ``ray_asd``: layers that import only downwards, and no cycles.

Read from the source with ``ast`` (nothing is imported): every ``ray_asd`` import counts,
a function's lazy one included; imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ray_asd"

# Bottom first; a unit is a top-level module or a subpackage. README.md's Layout lists them so.
LAYERS: list[set[str]] = [
    {"errors", "registry", "redact", "failure", "columns", "kinds", "paired"},
    {"tasks"},
    {"config", "config_base"},
    {"records", "tracking"},
    {"models"},
    {"student", "teacher", "strategies"},
    {"raters", "filters"},
    {"schedule", "plan"},
    {"answers", "parts", "generation", "analysis", "metrics", "state", "progress"},
    {"loop", "assemble"},
    {"trial", "config_file"},
    {"experiment", "preflight"},
    {"runner", "report"},
    {"export"},
    {"cli"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported(path: Path, top_level_only: bool) -> set[str]:
    """The ray_asd modules a file imports (``from ray_asd import x``: ``ray_asd.x``)."""
    found: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if not (top_level_only and nested):
                if isinstance(child, ast.ImportFrom) and (child.module or "").startswith("ray_asd"):
                    module = str(child.module)
                    submodules = {f"{module}.{alias.name}" for alias in child.names}
                    found.update(submodules & MODULES.keys() or {module})
                elif isinstance(child, ast.Import):
                    found.update(a.name for a in child.names if a.name.startswith("ray_asd"))
            visit(child, nested)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def unit(module: str) -> str:
    """A module's layer unit: ``ray_asd.runner.trial`` -> ``runner``."""
    return module.split(".")[1] if "." in module else ""


def layer(name: str) -> int:
    (index,) = [i for i, units in enumerate(LAYERS) if name in units]
    return index


def test_every_unit_has_a_layer() -> None:
    units = {unit(m) for m in MODULES} - {""}
    assert units == set().union(*LAYERS), "add a new module to LAYERS (and README.md's Layout)"


def test_imports_only_go_down_the_layers() -> None:
    upward = sorted(
        f"{module} imports {target}"
        for module, path in MODULES.items()
        for target in imported(path, top_level_only=False)
        if unit(module) and unit(target) and layer(unit(target)) > layer(unit(module))
    )
    assert not upward


def test_the_module_graph_has_no_cycle() -> None:
    graph = {
        module: imported(path, top_level_only=True) - {module} for module, path in MODULES.items()
    }
    # A package imports its modules at load (its __init__): only a module's own edges count.
    done: set[str] = set()
    path: list[str] = []

    def walk(module: str) -> None:
        if module in path:
            raise AssertionError(" -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        path.append(module)
        for target in sorted(graph.get(module, ())):
            walk(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        walk(module)


def test_the_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    source = tmp_path / "fake.py"
    source.write_text("def f():\n    from ray_asd.runner.run import run_experiment\n")
    assert imported(source, top_level_only=False) == {"ray_asd.runner.run"}
    assert imported(source, top_level_only=True) == set()
    assert layer(unit("ray_asd.runner.run")) > layer(unit("ray_asd.loop"))
