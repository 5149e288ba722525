"""Fixtures of the schema tests: catalogs of datasets, the demo dataset, keys and the checker."""

from __future__ import annotations

import copy
import json

import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema
from openapi_spec_validator import validate as openapi_validate

from datasets.models import Column, Dataset
from datasets.schema.rules import import_rules_enforce

PUBLIC_URL = "https://gateway.example.com"

# name, type, enum, min, max, pii: one column of each kind a dataset may publish.
CATALOG_COLUMNS = [
    ("id", "integer", None, 1, 500, "none"),
    ("day", "date", None, "2023-01-01", "2024-12-31", "none"),
    ("seen_at", "datetime", None, "2023-01-01T00:00:00", "2024-12-31T23:00:00", "none"),
    ("label", "string", ["alpha", "beta", "gamma"], None, None, "none"),
    ("note", "string", None, None, None, "none"),
    ("amount", "number", None, 0.5, 999.5, "none"),
    ("units", "integer", [1, 2, 3], 1, 3, "none"),
    ("active", "boolean", [False, True], None, None, "none"),
    ("email", "string", None, None, None, "mask"),
    ("secret", "string", None, None, None, "hide"),
]


def catalog_dataset(slug: str, *, primary_key: bool = True) -> Dataset:
    """A dataset registered like an upload (no file: enough for its schema)."""
    dataset = Dataset.objects.create(
        slug=slug,
        title=f"Dataset {slug}",
        description=f"Test records of {slug}, one row per event.",
        table="data",
        version=1,
        primary_key="id" if primary_key else "",
        row_count=500,
    )
    for position, (name, kind, enum, low, high, pii) in enumerate(CATALOG_COLUMNS):
        Column.objects.create(
            dataset=dataset,
            position=position,
            physical_name=name,
            name=name,
            type=kind,
            description=f"The {name} of the event.",
            searchable=kind == "string",
            pii=pii,
            enum=enum,
            min_value=low,
            max_value=high,
        )
    return dataset


@pytest.fixture
def public_url(settings):
    settings.GATEWAY_PUBLIC_URL = PUBLIC_URL
    return PUBLIC_URL


@pytest.fixture
def catalog(db):
    """Register `count` datasets d01, d02, ... and return their slugs."""

    def _catalog(count: int, *, primary_key: bool = True) -> list[str]:
        slugs = [f"d{number:02d}" for number in range(1, count + 1)]
        for slug in slugs:
            catalog_dataset(slug, primary_key=primary_key)
        return slugs

    return _catalog


@pytest.fixture
def demo(db):
    """The demo `sales` dataset, imported through the real ingestion path (small)."""
    from datasets.demo import demo_load

    dataset, _ = demo_load(rows=400)
    return dataset


@pytest.fixture
def raw_key(db):
    """A key for every dataset."""
    from keys.services import api_key_issue

    def _issue(**options) -> str:
        options.setdefault("name", "schema tests")
        if "datasets" not in options:
            options.setdefault("all_datasets", True)
        return api_key_issue(**options).raw_key

    return _issue


@pytest.fixture
def staff(db) -> Client:
    """A client logged in as a staff user."""
    from django.contrib.auth.models import User

    user = User.objects.create_user("admin", password="pw", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def assert_importable(document: dict) -> None:
    """The checker: valid OpenAPI 3.1 and every ChatGPT import rule met (rules.py, unfixed)."""
    document = json.loads(json.dumps(document))
    openapi_validate(document)
    validate_schema(document)
    findings = import_rules_enforce(copy.deepcopy(document), fix=False)
    assert findings == [], "\n".join(f"{f.rule} {f.location}: {f.message}" for f in findings)


def schema_of(response) -> dict:
    """The document of a schema response, after checking it is one."""
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)


def operation_ids(document: dict) -> list[str]:
    """Every operationId, in document order."""
    return [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    ]


def parameters(document: dict, operation_id: str) -> dict[str, dict]:
    """The parameters of one operation, by name."""
    for item in document["paths"].values():
        for operation in item.values():
            if operation["operationId"] == operation_id:
                return {parameter["name"]: parameter for parameter in operation["parameters"]}
    raise AssertionError(f"no operation {operation_id}")
