"""manage.py add_user: creates or updates a user who signs in through OAuth, with a grant."""

from __future__ import annotations

import io
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from accounts.models import AccessGrant
from tests.accounts.conftest import PASSWORD


def _add_user(*args: str, password: str | None = PASSWORD) -> str:
    out = io.StringIO()
    with mock.patch("sys.stdin", io.StringIO(password + "\n" if password is not None else "")):
        call_command("add_user", *args, stdout=out)
    return out.getvalue()


def test_add_user_creates_the_user_and_the_grant(orders):
    output = _add_user(
        "eve", "--password-stdin", "--datasets", "orders", "--row-filter", "orders:region=EU"
    )
    assert "Created user eve." in output
    user = User.objects.get(username="eve")
    assert user.check_password(PASSWORD)
    assert not user.is_staff
    grant = AccessGrant.objects.get(user=user)
    assert [dataset.slug for dataset in grant.datasets.all()] == ["orders"]
    assert [(f.column, f.value) for f in grant.row_filters.all()] == [("region", "EU")]


def test_add_user_again_replaces_the_grant_and_keeps_the_password(orders, secrets_ds):
    _add_user("eve", "--password-stdin", "--datasets", "orders", "--row-filter", "orders:region=EU")
    output = _add_user("eve", "--all", password=None)
    assert "Updated user eve." in output
    user = User.objects.get(username="eve")
    assert user.check_password(PASSWORD)
    grant = AccessGrant.objects.get(user=user)
    assert grant.all_datasets and not grant.row_filters.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("eve", "--password-stdin", "--datasets", "nope"),
            "Unknown dataset nope; datasets: orders.",
        ),
        (("eve", "--datasets", "orders"), "A new user needs a password."),
        (
            (
                "eve",
                "--password-stdin",
                "--datasets",
                "orders",
                "--row-filter",
                "orders:colour=red",
            ),
            "orders has no column 'colour'",
        ),
        (
            ("eve", "--password-stdin", "--datasets", "orders", "--row-filter", "bad"),
            "SLUG:COLUMN=VALUE",
        ),
    ],
)
def test_add_user_refuses_with_the_reason(orders, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _add_user(*args, password=PASSWORD if "--password-stdin" in args else None)
    assert not AccessGrant.objects.exists()


def test_add_user_refuses_a_weak_password(orders):
    with pytest.raises(CommandError, match="too common"):
        _add_user("eve", "--password-stdin", "--datasets", "orders", password="password")
