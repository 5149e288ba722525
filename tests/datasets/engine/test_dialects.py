"""Each kind of SQL source is one record (datasets/engine/dialects.py): nothing else branches on
which kind a source is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from datasets.engine.connections import source_kind
from datasets.engine.dialects import SOURCE_DIALECTS
from datasets.models import Source

ROOT = Path(__file__).resolve().parents[3]
# Where a kind's name may be written: its record, and the catalog's list of kinds.
RECORDS = {"datasets/engine/dialects.py", "datasets/engine/sql.py", "datasets/models.py"}


def test_every_kind_a_source_may_have_has_its_record():
    assert {value for value, _ in Source.Kind.choices} == set(SOURCE_DIALECTS)


@pytest.mark.parametrize(
    ("name", "kind"),
    [(name, dialect.kind) for dialect in SOURCE_DIALECTS.values() for name in dialect.url_names],
)
def test_a_urls_scheme_names_its_kind(name, kind):
    assert source_kind(f"{name}://user@host/database") == kind


def _kind_comparisons(path: Path) -> list[str]:
    kinds = set(SOURCE_DIALECTS)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                if isinstance(operand, ast.Constant) and operand.value in kinds:
                    found.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} compares {operand.value!r}"
                    )
    return found


def test_no_code_outside_the_records_branches_on_a_kind():
    paths = [
        path
        for package in ("datasets", "access", "keys", "accounts", "gatewaysite")
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts and str(path.relative_to(ROOT)) not in RECORDS
    ]
    assert [line for path in paths for line in _kind_comparisons(path)] == []
