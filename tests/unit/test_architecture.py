"""The layer rule: ``core`` is pure — it imports no adapter, application or interface module, and
performs no I/O (files, network, clock, environment)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "src" / "morningstar"
CORE = PKG / "core"
# strategies are pure too; registry.py is their loader (it reads users' strategy files)
STRATEGIES = PKG / "strategies"
ALLOWED_INTERNAL = ("morningstar.core", "morningstar.errors", "morningstar.strategies")
FORBIDDEN_MODULES = {
    "os", "io", "socket", "subprocess", "shutil", "pathlib", "tempfile", "glob", "urllib", "http",
    "requests", "httpx", "ccxt", "sqlalchemy", "alembic", "pyarrow", "time", "datetime", "random",
    "logging", "asyncio", "threading", "multiprocessing", "sys", "platformdirs", "yaml", "pickle",
}  # fmt: skip
FORBIDDEN_CALLS = {"open", "input", "print", "exec", "eval", "__import__", "breakpoint"}
FORBIDDEN_ATTRS = {
    "read_csv", "read_parquet", "to_csv", "to_parquet", "read_text", "write_text", "now", "today",
    "utcnow", "getenv", "environ", "fromtimestamp", "perf_counter", "monotonic", "time_ns",
}  # fmt: skip


def _type_checking_imports(tree: ast.AST) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name | ast.Attribute):
            name = node.test.id if isinstance(node.test, ast.Name) else node.test.attr
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    found.update(id(n) for n in ast.walk(stmt)
                                 if isinstance(n, ast.Import | ast.ImportFrom))  # fmt: skip
    return found


def core_files() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    files += [p for p in sorted(STRATEGIES.rglob("*.py")) if p.name != "registry.py"]
    assert files, f"no core modules found under {CORE}"
    return files


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(PKG)))
def test_core_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    problems: list[str] = []
    type_only = _type_checking_imports(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) in type_only:
            continue  # ``if TYPE_CHECKING:`` imports (e.g. datetime for annotations) never run
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                top = name.split(".")[0]
                if name.startswith("morningstar") and not name.startswith(ALLOWED_INTERNAL):
                    problems.append(f"line {node.lineno}: imports {name} (outer layer)")
                elif top in FORBIDDEN_MODULES:
                    problems.append(
                        f"line {node.lineno}: imports {name} (I/O, clock or environment)"
                    )
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in FORBIDDEN_CALLS:
                problems.append(f"line {node.lineno}: calls {node.func.id}()")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRS:
            problems.append(f"line {node.lineno}: uses .{node.attr}")
    assert not problems, f"{path.name} breaks the core layer rule: " + "; ".join(problems)


def test_rule_catches_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nfrom morningstar.store import db\nx = open('f')\ny = pd.Timestamp.now()\n"
        "if TYPE_CHECKING:\n    from datetime import datetime\n"
    )
    with pytest.raises(AssertionError) as info:
        test_core_is_pure(bad)
    message = str(info.value)
    for expected in ("imports os", "imports morningstar.store", "calls open()", "uses .now"):
        assert expected in message
    assert "datetime" not in message  # a type-only import is allowed


ADAPTERS = ("data", "exchange", "llm", "store")
OUTER = ("morningstar.cli", "morningstar.api", "morningstar.services", "morningstar.bootstrap")


def adapter_files() -> list[Path]:
    return [p for name in ADAPTERS for p in sorted((PKG / name).rglob("*.py"))]


@pytest.mark.parametrize("path", adapter_files(), ids=lambda p: str(p.relative_to(PKG)))
def test_adapters_import_no_interface_or_service(path: Path) -> None:
    """Imports point inward: an adapter never imports the CLI, the API or the services
    (``llm/compat.py`` builds its default gateway through the composition root, lazily)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(OUTER):
            lazy = path.name == "compat.py" and node.module == "morningstar.bootstrap"
            if not lazy:
                problems.append(f"line {node.lineno}: imports {node.module}")
        elif isinstance(node, ast.Import):
            problems += [f"line {node.lineno}: imports {a.name}" for a in node.names
                         if a.name.startswith(OUTER)]  # fmt: skip
    assert not problems, f"{path.name} imports an outer layer: " + "; ".join(problems)
