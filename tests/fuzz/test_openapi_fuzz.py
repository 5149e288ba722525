"""Fuzz every operation of /openapi.json on a live server with a real key (schemathesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.conftest import require_module

schemathesis = require_module("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The demo catalog's operations; the first test pins the list so none escapes the fuzzing.
OPERATIONS = [
    "list_datasets",
    "describe_dataset",
    "list_sales_rows",
    "get_sales_row",
    "aggregate_sales",
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


@pytest.fixture
def gateway_schema(live_server, fuzz_key):
    """The served schema, with the key sent on every generated call."""
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json", timeout=10)
    schema.config.update(base_url=live_server.url, headers={"Authorization": f"Bearer {fuzz_key}"})
    return schema


def test_the_schema_has_exactly_the_fuzzed_operations(gateway_schema):
    found = sorted(result.ok().definition.raw["operationId"] for result in gateway_schema.get_all_operations())
    assert found == sorted(OPERATIONS)


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_operation_answers_as_its_schema_declares(gateway_schema, operation_id, mode):
    operation = gateway_schema.find_operation_by_id(operation_id)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        case.call_and_validate(checks=CHECKS, timeout=10)

    fuzz()
