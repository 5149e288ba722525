"""Key services: the format of a key, what is stored, and the demo key of `make run`."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from keys.models import ApiKey, validate_rate
from keys.services import api_key_demo, api_key_issue, api_key_rotate, key_hash
from tests.keys.conftest import bearer, error_of

pytestmark = pytest.mark.django_db


def test_key_format_is_prefix_key_id_and_a_long_secret(orders):
    # 40 symbols of 62: about 238 bits, above the 128 the contract asks for.
    issued = api_key_issue(name="format", all_datasets=True)
    match = re.fullmatch(r"gw_([A-Za-z0-9]{12})_([A-Za-z0-9]{40})", issued.raw_key)
    assert match and match.group(1) == issued.key.key_id
    stored = ApiKey.objects.get()
    assert stored.secret_hash == key_hash(issued.raw_key) != issued.raw_key


def test_keys_get_distinct_ids_and_secrets(orders):
    raws = [api_key_issue(name=f"k{n}", all_datasets=True).raw_key for n in range(20)]
    assert len({raw.split("_")[1] for raw in raws}) == 20
    assert len({raw.split("_")[2] for raw in raws}) == 20


@pytest.mark.parametrize("rate", ["1/s", "60/m", "1000/h", "10/5m", "5000/d"])
def test_valid_rates(rate):
    validate_rate(rate)


@pytest.mark.parametrize("rate", ["", "60", "60/", "60/x", "0/m", "10/0m", "-1/m", "60/mm", "a/m"])
def test_invalid_rates(rate):
    with pytest.raises(ValidationError, match="is not a rate"):
        validate_rate(rate)


def test_revoked_key_cannot_be_rotated(orders):
    issued = api_key_issue(name="k", all_datasets=True)
    from keys.services import api_key_revoke

    api_key_revoke(key_id=issued.key_id)
    with pytest.raises(ValidationError, match="is revoked"):
        api_key_rotate(key_id=issued.key_id)


def test_demo_key_is_kept_across_runs_and_renewed_on_request(orders):
    key, first = api_key_demo()
    assert api_key_demo() == (key, None)  # a second run keeps the key working
    assert bearer(first).get("/api/v1/datasets/").status_code == 200
    _, second = api_key_demo(new_secret=True)
    assert second and second != first
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().all_datasets
    error_of(bearer(first).get("/api/v1/datasets/"), 401, "unauthorized")
    assert bearer(second).get("/api/v1/datasets/").status_code == 200


def test_demo_command_prints_a_working_key(orders, capsys, settings):
    from io import StringIO

    from django.core.management import call_command

    from datasets.models import Dataset

    out = StringIO()
    call_command("demo", "--rows", "50", stdout=out)
    (line,) = [line for line in out.getvalue().splitlines() if "API key:" in line]
    raw = line.split()[2]
    assert Dataset.objects.filter(slug="sales").exists()
    assert bearer(raw).get("/api/v1/datasets/sales/").status_code == 200
    # The next run keeps the key and the admin password (and says so).
    from django.contrib.auth import get_user_model

    password_hash = get_user_model().objects.get(username="admin").password
    again = StringIO()
    call_command("demo", "--rows", "50", stdout=again)
    assert raw not in again.getvalue()
    assert "Password: unchanged" in again.getvalue() and "(unchanged" in again.getvalue()
    assert get_user_model().objects.get(username="admin").password == password_hash
    assert bearer(raw).get("/api/v1/datasets/sales/").status_code == 200
