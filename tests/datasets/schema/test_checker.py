"""Every import rule on real catalogs: 1, 9 and 25 datasets (the last through ?datasets=)."""

from __future__ import annotations

import pytest
from django.test import Client

from datasets.schema.build import schema_build
from datasets.schema.rules import MAX_OPERATIONS
from datasets.selectors import dataset_specs
from tests.datasets.schema.conftest import assert_importable, operation_ids, schema_of

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("count", [1, 9])
def test_catalog_schema_meets_every_import_rule(catalog, public_url, count):
    slugs = catalog(count)
    document = schema_of(Client().get("/openapi.json"))
    assert_importable(document)
    assert len(operation_ids(document)) == 2 + 3 * count <= MAX_OPERATIONS
    assert {f"aggregate_{slug}" for slug in slugs} <= set(operation_ids(document))


def test_25_datasets_are_served_through_the_datasets_parameter(catalog, public_url):
    slugs = catalog(25)
    assert Client().get("/openapi.json").status_code == 400
    for chosen in (slugs[:9], slugs[9:18], slugs[18:]):
        document = schema_of(Client().get("/openapi.json?datasets=" + ",".join(chosen)))
        assert_importable(document)
        assert sorted(operation_ids(document)[2:]) == sorted(
            f"{kind}"
            for slug in chosen
            for kind in (f"list_{slug}_rows", f"get_{slug}_row", f"aggregate_{slug}")
        )


def test_14_datasets_without_primary_key_fit_in_30_operations(catalog, public_url):
    catalog(14, primary_key=False)
    document = schema_of(Client().get("/openapi.json"))
    assert len(operation_ids(document)) == 30
    assert_importable(document)


def test_demo_schema_meets_every_import_rule(demo, public_url):
    assert_importable(schema_of(Client().get("/openapi.json")))


def test_schema_generation_emits_no_warning(demo, catalog, public_url):
    catalog(3)
    built = schema_build(specs=dataset_specs(), server_url=public_url)
    assert built.warnings == ()
    assert [finding for finding in built.findings if not finding.fixed] == []
