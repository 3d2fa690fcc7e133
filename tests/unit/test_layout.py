"""The domain library stands alone: development tooling (firebreak_dev) builds on it, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "include" / "firebreak"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_library_never_imports_the_dev_tooling() -> None:
    offenders = {
        str(path.relative_to(LIBRARY)): dev
        for path in sorted(LIBRARY.rglob("*.py"))
        if (dev := sorted(m for m in imported_modules(path) if m.split(".")[0] == "firebreak_dev"))
    }
    assert not offenders
