"""Authentication by key: both headers, and a 401 in the error shape saying what is wrong."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client

from keys.authentication import MALFORMED
from keys.models import ApiKey
from keys.services import api_key_revoke, api_key_rotate
from tests.keys.conftest import bearer, error_of

pytestmark = pytest.mark.django_db


def test_valid_key_in_authorization_bearer_is_accepted(orders, issue):
    response = bearer(issue(all_datasets=True)).get("/api/v1/datasets/orders/")
    assert response.status_code == 200
    assert response.json()["slug"] == "orders"


def test_valid_key_in_x_api_key_is_accepted(orders, issue):
    client = Client(headers={"X-API-Key": issue(all_datasets=True)})
    assert client.get("/api/v1/datasets/orders/").status_code == 200


def test_bearer_scheme_is_case_insensitive(orders, issue):
    client = Client(headers={"Authorization": f"bearer {issue(all_datasets=True)}"})
    assert client.get("/api/v1/datasets/").status_code == 200


def test_same_key_in_both_headers_is_accepted(orders, issue):
    raw = issue(all_datasets=True)
    client = Client(headers={"Authorization": f"Bearer {raw}", "X-API-Key": raw})
    assert client.get("/api/v1/datasets/").status_code == 200


def test_two_different_keys_are_refused(orders, issue):
    client = Client(
        headers={
            "Authorization": f"Bearer {issue(all_datasets=True)}",
            "X-API-Key": issue(all_datasets=True),
        }
    )
    assert "send one" in error_of(client.get("/api/v1/datasets/"), 401, "unauthorized")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/datasets/",
        "/api/v1/datasets/orders/",
        "/api/v1/datasets/orders/rows/",
        "/api/v1/datasets/orders/rows/1/",
        "/api/v1/datasets/orders/aggregate/",
    ],
)
def test_missing_key_is_401_not_403(orders, url):
    message = error_of(Client().get(url), 401, "unauthorized")
    assert "Authorization: Bearer" in message and "X-API-Key" in message


def test_other_authorization_scheme_counts_as_missing_key(orders):
    response = Client(headers={"Authorization": "Basic dXNlcjpwYXNz"}).get("/api/v1/datasets/")
    assert "is required" in error_of(response, 401, "unauthorized")


@pytest.mark.parametrize(
    "raw",
    [
        "not-a-key",
        "gw_",
        "gw_abc",
        "gw_abc_",
        "gw_abc_short",
        "gw_ab-c_0123456789abcdefghijklmnop",
        "sk_abcdefabcdef_0123456789abcdefghijklmnopqrstuvwxyz0123",
        "gw_abcdefabcdef_0123456789abcdefghij klmnopqrstuvwxyz0123",
    ],
)
def test_malformed_key_is_401_without_echoing_it(orders, raw):
    response = Client(headers={"X-API-Key": raw}).get("/api/v1/datasets/")
    # One fixed message: nothing of what was sent is echoed.
    assert error_of(response, 401, "unauthorized") == MALFORMED


def test_empty_bearer_is_malformed(orders):
    response = Client(headers={"Authorization": "Bearer "}).get("/api/v1/datasets/")
    assert "malformed" in error_of(response, 401, "unauthorized")


def test_unknown_key_is_401(orders, issue):
    issue(all_datasets=True)
    raw = "gw_AAAAAAAAAAAA_" + "B" * 40
    message = error_of(bearer(raw).get("/api/v1/datasets/"), 401, "unauthorized")
    assert "Unknown API key" in message
    assert raw not in message


def test_known_key_id_with_wrong_secret_is_unknown(orders, issue):
    raw = issue(all_datasets=True)
    forged = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    message = error_of(bearer(forged).get("/api/v1/datasets/"), 401, "unauthorized")
    assert "Unknown API key" in message


def test_revoked_key_is_rejected(orders, issue):
    raw = issue(all_datasets=True)
    client = bearer(raw)
    assert client.get("/api/v1/datasets/").status_code == 200
    key_id = ApiKey.objects.get().key_id
    api_key_revoke(key_id=key_id)
    message = error_of(client.get("/api/v1/datasets/"), 401, "unauthorized")
    assert "revoked" in message and key_id in message
    assert raw not in message


def test_revocation_made_elsewhere_is_seen_at_once(orders, issue):
    # As another process would: only the database changes, then the generation is bumped by the
    # model signal. This process's cached key table must not let the key through.
    client = bearer(issue(all_datasets=True))
    assert client.get("/api/v1/datasets/").status_code == 200
    key = ApiKey.objects.get()
    key.revoked = True
    key.save()
    error_of(client.get("/api/v1/datasets/"), 401, "unauthorized")


def test_expired_key_is_rejected(orders, issue):
    with time_machine.travel(dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC), tick=False):
        raw = issue(all_datasets=True, expires_at=dt.datetime(2025, 3, 2, tzinfo=dt.UTC))
        assert bearer(raw).get("/api/v1/datasets/").status_code == 200
    with time_machine.travel(dt.datetime(2025, 3, 2, 0, 0, 1, tzinfo=dt.UTC), tick=False):
        message = error_of(bearer(raw).get("/api/v1/datasets/"), 401, "unauthorized")
    assert "expired on 2025-03-02" in message


def test_rotated_away_key_is_rejected_and_new_one_works(orders, issue):
    old = issue(all_datasets=True)
    key = ApiKey.objects.get()
    new = api_key_rotate(key_id=key.key_id).raw_key
    assert new != old and new.startswith(f"gw_{key.key_id}_")
    error_of(bearer(old).get("/api/v1/datasets/"), 401, "unauthorized")
    assert bearer(new).get("/api/v1/datasets/").status_code == 200


@pytest.mark.django_db(transaction=True)  # cached only from committed data
def test_key_is_looked_up_without_a_query_once_cached(orders, issue, django_assert_max_num_queries):
    client = bearer(issue(all_datasets=True))
    client.get("/api/v1/datasets/")
    from keys.authentication import key_authenticate

    raw = client.defaults["HTTP_AUTHORIZATION"].split(" ", 1)[1]
    with django_assert_max_num_queries(0):
        assert key_authenticate(raw).all_datasets
