"""The layers depend one way: datasets knows nothing of credentials, keys and accounts nothing of
the doors.

`access` (the doors: REST, MCP, the schema views, the Connect page, and the one function that
resolves their caller) sits above `keys` (API keys) and `accounts` (people and OAuth), which build
the caller's policy; the policy itself (datasets/policy.py) and the engine sit below them all. A
change in how a caller is let in can then never reach into the engine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "datasets": {"keys", "accounts", "access"},
    "keys": {"accounts", "access"},
    "accounts": {"access"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_lower_layer_never_imports_a_higher_one(package):
    offending = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("def f():\n    from keys.models import ApiKey\n    import access.api\n")
    assert _imports(module) == {"keys", "access"}
