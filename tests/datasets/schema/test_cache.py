"""The served documents each process keeps: bounded in memory, one per published base URL."""

from __future__ import annotations

import pytest
from django.test import Client

from datasets.schema import build
from tests.datasets.schema.conftest import PUBLIC_URL, catalog_dataset

# Cached only from committed data: these tests commit their catalog.
pytestmark = pytest.mark.django_db(transaction=True)


def _held_bytes() -> int:
    return build._built._bytes


def test_many_host_ports_and_subsets_stay_within_the_byte_budget(monkeypatch, settings):
    settings.GATEWAY_PUBLIC_URL = ""
    settings.ALLOWED_HOSTS = ["localhost"]
    for n in range(4):
        catalog_dataset(f"d{n:02}")
    first = Client().get("/openapi.json", HTTP_HOST="localhost:1000")
    assert first.status_code == 200
    budget = 3 * build._footprint(build._built._values[next(iter(build._built._values))])
    monkeypatch.setattr(build._built, "max_bytes", budget)
    for port in range(1001, 1031):
        assert Client().get("/openapi.json", HTTP_HOST=f"localhost:{port}").status_code == 200
    for subset in ("d00", "d01", "d00,d02", "d01,d03", "d02,d03"):
        response = Client().get(f"/openapi.json?datasets={subset}", HTTP_HOST="localhost")
        assert response.status_code == 200
    # 36 documents were served; the oldest left as the budget filled.
    assert 0 < _held_bytes() <= budget
    assert len(build._built) < 10


def test_with_a_public_url_every_host_shares_one_document(settings):
    settings.GATEWAY_PUBLIC_URL = PUBLIC_URL
    settings.ALLOWED_HOSTS = ["localhost", "gateway.example.com"]
    catalog_dataset("d00")
    for port in range(1000, 1010):
        response = Client().get("/openapi.json", HTTP_HOST=f"localhost:{port}", secure=True)
        assert response.status_code == 200
        assert response.json()["servers"] == [{"url": PUBLIC_URL}]
    assert len(build._built) == 1
