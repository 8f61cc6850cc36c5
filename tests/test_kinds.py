"""No module asks whether a teacher is the oracle by its name or its type: they ask its kind
(`ray_asd.kinds.teacher_kind`), the one place that knows."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import ray_asd

PACKAGE = Path(ray_asd.__file__).parent
REGISTRY = PACKAGE / "kinds.py"
TEACHER_TYPES = {"OracleTeacher", "LLMTeacher"}


def kind_checks(source: str) -> list[int]:
    """The lines of ``source`` that compare with the string "oracle" (``==``, ``!=``, ``in``
    a literal collection, a ``case``) or ``isinstance`` a teacher to know its kind."""
    return sorted(node.lineno for node in ast.walk(ast.parse(source)) if _asks_kind(node))


def _asks_kind(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare):
        return any(_names_oracle(operand) for operand in (node.left, *node.comparators))
    if isinstance(node, ast.MatchValue):
        return _names_oracle(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2:
        types = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
        return node.func.id == "isinstance" and bool(TEACHER_TYPES & types)
    return False


def _names_oracle(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return node.value == "oracle"
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_oracle(element) for element in node.elts)
    return False


def test_the_scan_finds_each_way_of_asking_and_nothing_else() -> None:
    source = textwrap.dedent(
        """
        a = backend == "oracle"
        b = "oracle" != config.teacher.backend
        c = backend in ("openai", "oracle")
        match backend:
            case "oracle":
                pass
        d = isinstance(teacher, LLMTeacher)
        e = isinstance(teacher, (OracleTeacher, str))
        model = "oracle"
        makers = {"oracle": make}
        f = isinstance(x, int) or backend == "vllm"
        """
    )
    assert kind_checks(source) == [2, 3, 4, 6, 8, 9]


def test_no_module_but_the_registry_asks_a_teachers_kind_by_name_or_type() -> None:
    found = {
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != REGISTRY
        for line in kind_checks(path.read_text(encoding="utf-8"))
    }
    assert found == set()
