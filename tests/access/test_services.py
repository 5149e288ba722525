"""The query service's own rules, the same behind every door."""

from __future__ import annotations

import pytest

from access.services import output_format
from datasets.engine.errors import QueryError


@pytest.mark.parametrize(
    ("params", "allowed", "chosen"),
    [
        ({}, ("json",), "json"),
        ({"format": "json"}, ("json",), "json"),
        ({"format": "csv"}, ("json", "csv"), "csv"),
    ],
)
def test_output_format_is_json_unless_another_is_allowed_and_asked(params, allowed, chosen):
    assert output_format(params, allowed) == chosen


@pytest.mark.parametrize(
    ("params", "allowed"), [({"format": "csv"}, ("json",)), ({"format": "xml"}, ("json", "csv"))]
)
def test_another_format_is_invalid_value_naming_the_choices(params, allowed):
    with pytest.raises(QueryError) as raised:
        output_format(params, allowed)
    assert raised.value.code == "invalid_value"
    assert " or ".join(allowed) in raised.value.message
