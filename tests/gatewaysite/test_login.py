"""Sign-ins to /admin/: failures limited per username and per address; passwords validated."""

from __future__ import annotations

import logging
import re
import time

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

from tests.keys.conftest import redis_cache, redis_down  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "violet-harbour-71-lantern"
LIMITED = "Too many failed sign-ins"


@pytest.fixture
def staff():
    """Two staff users who may sign in to the admin."""
    User = get_user_model()
    return [
        User.objects.create_user(name, password=PASSWORD, is_staff=True) for name in ("ada", "bob")
    ]


@pytest.fixture
def rate(settings):
    """A budget of 3 failures, with the clock stopped: the attempts of one test all fall in one
    window of the limiter, whenever the test runs."""
    settings.GATEWAY_LOGIN_RATE = "3/15m"
    with time_machine.travel(time.time(), tick=False):
        yield 3


def sign_in(username: str, password: str, *, address: str = "198.51.100.5") -> tuple[bool, str]:
    """(signed in, page text) of one attempt through the admin's form, from `address`."""
    client = Client(REMOTE_ADDR=address)
    response = client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})
    signed_in = response.status_code == 302 and "_auth_user_id" in client.session
    return signed_in, response.content.decode()


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_a_username_is_refused_after_its_failures_even_with_the_right_password(
    staff, rate, backend, request
):
    if backend == "redis":
        request.getfixturevalue("redis_cache")
    for attempt in range(rate):
        # From a different address each time: the username's own budget is what runs out.
        signed_in, page = sign_in("ada", "wrong", address=f"198.51.100.{attempt + 10}")
        assert not signed_in and LIMITED not in page
    signed_in, page = sign_in("ada", PASSWORD, address="198.51.100.99")
    assert not signed_in
    assert re.search(
        r"Too many failed sign-ins for this username or from this address: try again in \d+ minutes?\.",
        page,
    )
    # Another user, from the same addresses, is not affected.
    assert sign_in("bob", PASSWORD, address="198.51.100.10")[0]


def test_the_username_budget_ignores_case_and_spaces(staff, rate):
    for username in ["ada", "ADA", " Ada "]:
        sign_in(username, "wrong", address="192.0.2.1" if username == "ada" else "192.0.2.2")
    assert sign_in("ada", PASSWORD, address="192.0.2.3")[1].count(LIMITED) == 1


def test_an_address_is_refused_after_its_failures_on_any_usernames(staff, rate):
    for number in range(rate):
        assert not sign_in(f"guess{number}", "wrong", address="203.0.113.7")[0]
    signed_in, page = sign_in("bob", PASSWORD, address="203.0.113.7")
    assert not signed_in and LIMITED in page
    # bob from elsewhere still signs in.
    assert sign_in("bob", PASSWORD, address="203.0.113.8")[0]


def test_successful_sign_ins_spend_no_budget(staff, rate):
    for _ in range(rate + 2):
        assert sign_in("ada", PASSWORD)[0]


def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(staff, rate, settings):
    settings.GATEWAY_BEHIND_PROXY = True
    proxy = "10.0.0.2"  # every request comes from the proxy
    for number in range(rate):
        client = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.7")
        client.post(LOGIN, {"username": f"guess{number}", "password": "wrong"})
    # Another client behind the same proxy is not blocked by the first one's failures.
    client = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.8")
    client.post(LOGIN, {"username": "bob", "password": PASSWORD})
    assert "_auth_user_id" in client.session


def test_when_the_cache_is_down_sign_ins_still_work(staff, rate, redis_down, caplog):  # noqa: F811
    with caplog.at_level(logging.WARNING, logger="gateway"):
        for _ in range(rate + 1):
            assert not sign_in("ada", "wrong")[0]
        assert sign_in("ada", PASSWORD)[0]
    assert "failed sign-ins are not limited" in caplog.text


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("password123", "too common"),
        ("8204917365", "entirely numeric"),
        ("short1!", "too short"),
        ("ada.lovelace", "too similar"),
    ],
)
def test_weak_passwords_are_refused(password, reason):
    user = get_user_model()(username="ada.lovelace", email="ada@example.com")
    with pytest.raises(ValidationError, match=reason):
        validate_password(password, user)


def test_the_demo_admin_password_passes_the_validators_and_signs_in(capsys, monkeypatch):
    monkeypatch.delenv("GATEWAY_ADMIN_PASSWORD", raising=False)
    call_command("demo", rows=20)
    password = re.search(r"User:\s+admin\s+Password: (\S+)", capsys.readouterr().out).group(1)
    admin = get_user_model().objects.get(username="admin")
    validate_password(password, admin)
    assert sign_in("admin", password)[0]
