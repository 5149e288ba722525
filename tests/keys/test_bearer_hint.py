"""A key sent without its `Bearer ` scheme: a 401 that says how to send it."""

from __future__ import annotations

import pytest
from django.test import Client

from keys.authentication import NO_BEARER
from tests.keys.conftest import error_of

pytestmark = pytest.mark.django_db


def test_a_bare_key_in_the_authorization_header_is_told_to_add_bearer(orders, issue):
    raw = issue(all_datasets=True)
    response = Client(headers={"Authorization": raw}).get("/api/v1/datasets/")
    message = error_of(response, 401, "unauthorized")
    # Not the answer to a call without any key ("An API key is required"): the key is there.
    assert message == NO_BEARER
    assert "without" in message and "Authorization: Bearer <key>" in message
    assert raw not in response.content.decode()
