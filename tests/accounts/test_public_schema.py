"""A row filter on a user's grant withholds the dataset's values from the public schema too."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import AccessGrant, GrantRowFilter
from tests.datasets.schema.conftest import catalog_dataset

pytestmark = pytest.mark.django_db


def _public_schema() -> str:
    response = Client().get("/openapi.json", HTTP_HOST="localhost")
    assert response.status_code == 200
    return json.dumps(response.json())


def test_a_grant_row_filter_withholds_the_values_of_the_public_schema(settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    dataset = catalog_dataset("d01")
    assert '"gamma"' in _public_schema()  # the label enum is published while nobody is filtered
    grant = AccessGrant.objects.create(user=get_user_model().objects.create(username="ada"))
    grant.datasets.set([dataset])
    GrantRowFilter.objects.create(grant=grant, dataset=dataset, column="label", value="alpha")
    assert '"gamma"' not in _public_schema()
