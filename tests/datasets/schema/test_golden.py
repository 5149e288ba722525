"""The demo schema is a checked artifact: compared with the reviewed golden file.

When the document changes, the new one is written beside the golden file as
`openapi.received.json` (git-ignored): review the difference, then copy it over the golden file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from tests.datasets.schema.conftest import schema_of

pytestmark = pytest.mark.django_db

GOLDEN = Path(__file__).with_name("openapi.golden.json")
RECEIVED = Path(__file__).with_name("openapi.received.json")


def test_demo_schema_matches_the_golden_file(demo, public_url):
    document = schema_of(Client().get("/openapi.json"))
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    golden = GOLDEN.read_text(encoding="utf-8") if GOLDEN.exists() else ""
    if text != golden:
        RECEIVED.write_text(text, encoding="utf-8")
        pytest.fail(
            f"The schema differs from {GOLDEN.name}: review {RECEIVED.name} "
            f"(diff {GOLDEN.name} {RECEIVED.name}) and copy it over the golden file if right."
        )
    RECEIVED.unlink(missing_ok=True)
