"""`python manage.py spectacular --validate --fail-on-warn` passes on the demo catalog."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from tests.datasets.schema.conftest import assert_importable

pytestmark = pytest.mark.django_db


def test_spectacular_command_validates_without_warnings(demo, public_url, tmp_path):
    target = tmp_path / "schema.json"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--format",
        "openapi-json",
        "--file",
        str(target),
    )
    document = json.loads(target.read_text())
    assert "aggregate_sales" in {
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    }
    assert_importable(document)
