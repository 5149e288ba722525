"""Fuzz every operation of /openapi.json on a live server with a real key (schemathesis).

Each operation is fuzzed with data that fits its declared parameters (positive) and with data
that does not (negative). Every response must be no server error, carry a status code and a
content type the operation declares, and match the declared response schema. A failure found
here is a bug to fix in the API or the schema, never a check to relax.
"""

from __future__ import annotations

import os

import pytest

from tests.fuzz.conftest import require_module

schemathesis = require_module("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402  (installed with schemathesis)
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
# The demo catalog's operations; a test pins this list so no operation escapes the fuzzing.
OPERATIONS = [
    "list_datasets",
    "describe_dataset",
    "list_sales_rows",
    "get_sales_row",
    "aggregate_sales",
]
# list_datasets declares no parameter: there is no invalid input to generate for it.
CASES = [
    (operation_id, mode)
    for operation_id in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (operation_id == "list_datasets" and mode == GenerationMode.NEGATIVE)
]
# Bounded: about 40 calls per case, a few seconds each; the same examples on every run, so a
# failure reproduces (set GATEWAY_FUZZ_RANDOM=1 to explore new ones).
FUZZ_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=os.environ.get("GATEWAY_FUZZ_RANDOM") != "1",
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def gateway_schema(live_server, fuzz_key):
    """The schema the live server publishes, with the key sent on every generated call."""
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json", timeout=10)
    schema.config.update(base_url=live_server.url, headers={"Authorization": f"Bearer {fuzz_key}"})
    return schema


def test_the_schema_has_exactly_the_fuzzed_operations(gateway_schema):
    found = [
        result.ok().definition.raw["operationId"] for result in gateway_schema.get_all_operations()
    ]
    assert sorted(found) == sorted(OPERATIONS)


@pytest.mark.parametrize(("operation_id", "mode"), CASES, ids=lambda value: str(value))
def test_operation_answers_as_its_schema_declares(gateway_schema, operation_id, mode):
    operation = gateway_schema.find_operation_by_id(operation_id)

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ_SETTINGS
    def fuzz(case):
        case.call_and_validate(checks=CHECKS, timeout=10)

    fuzz()
