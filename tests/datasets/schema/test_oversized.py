"""A dataset too large to import on its own is left out of the default document, not fatal to it."""

from __future__ import annotations

import pytest
from django.test import Client

from datasets.models import Column, Dataset
from tests.datasets.schema.conftest import catalog_dataset, operation_ids, schema_of

pytestmark = pytest.mark.django_db

WIDE_COLUMNS = 3000  # well past the 1 MB import limit whatever the size of one column


def _wide_dataset() -> Dataset:
    dataset = Dataset.objects.create(
        slug="wide", title="Wide", description="Very many measurements.", table="data", version=1
    )
    Column.objects.bulk_create(
        Column(
            dataset=dataset,
            position=n,
            physical_name=f"m{n:04}",
            name=f"m{n:04}",
            type="number",
            description=f"Measurement number {n} of the sensor, in millivolts.",
            min_value=0.0,
            max_value=float(n + 1),
        )
        for n in range(WIDE_COLUMNS)
    )
    return dataset


def test_an_oversized_dataset_leaves_the_others_served(public_url):
    catalog_dataset("d01")
    _wide_dataset()
    served = Client().get("/openapi.json")
    assert served.status_code == 200
    ids = operation_ids(schema_of(served))
    assert "list_d01_rows" in ids
    assert not any("wide" in operation for operation in ids)


def test_the_oversized_dataset_asked_for_alone_is_a_400_naming_the_problem(public_url):
    catalog_dataset("d01")
    _wide_dataset()
    response = Client().get("/openapi.json?datasets=wide")
    assert response.status_code == 400
    assert response.json()["error"]["message"]
