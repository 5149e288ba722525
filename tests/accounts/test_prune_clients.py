"""prune_oauth_clients: self-registered clients nobody uses go; the admin's GPT clients stay."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken

from accounts.services import gpt_actions_client_create

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def _at(moment: dt.datetime):
    return time_machine.travel(moment, tick=False)


def _registered(name: str, *, hours_ago: float, source: str = "dcr") -> Application:
    with _at(NOW - dt.timedelta(hours=hours_ago)):
        return Application.objects.create(
            name=name,
            client_type=Application.CLIENT_PUBLIC,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris="https://claude.ai/api/mcp/auth_callback",
            registration_source=source,
        )


def _token(application, user, *, expired_days_ago: float, refresh: str | None = None):
    expires = NOW - dt.timedelta(days=expired_days_ago)
    with _at(expires - dt.timedelta(hours=1)):
        token = AccessToken.objects.create(
            user=user,
            application=application,
            token=f"gwo_{application.pk}_{expired_days_ago}",
            expires=expires,
            scope="datasets",
        )
        if refresh is not None:
            RefreshToken.objects.create(
                user=user,
                application=application,
                token=f"gwr_{application.pk}_{expired_days_ago}",
                access_token=token,
                revoked=None if refresh == "live" else expires,
            )
    return token


def _prune(*args: str) -> str:
    out = StringIO()
    with _at(NOW):
        call_command("prune_oauth_clients", *args, stdout=out)
    return out.getvalue()


def _left() -> set[str]:
    return set(Application.objects.values_list("name", flat=True))


def test_a_client_without_a_token_goes_after_the_unused_hours(db):
    _registered("old", hours_ago=25)
    _registered("new", hours_ago=23)
    _registered("by document", hours_ago=25, source="cimd")
    assert "Deleted 2 OAuth clients" in _prune()
    assert _left() == {"new"}


def test_the_unused_hours_come_from_the_setting_or_the_option(db, settings):
    _registered("a day old", hours_ago=25)
    settings.GATEWAY_OAUTH_CLIENT_UNUSED_HOURS = 48
    _prune()
    assert _left() == {"a day old"}
    _prune("--unused-hours", "12")
    assert _left() == set()


def test_a_client_registered_over_http_is_pruned(db):
    with _at(NOW - dt.timedelta(hours=30)):
        response = Client().post(
            "/oauth/register/",
            data=json.dumps(
                {
                    "client_name": "Some MCP client",
                    "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
                    "token_endpoint_auth_method": "none",
                    "grant_types": ["authorization_code", "refresh_token"],
                }
            ),
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    _prune()
    assert _left() == set()


def test_clients_whose_tokens_expired_long_ago_go(db, alice):
    _token(_registered("idle", hours_ago=24 * 90), alice, expired_days_ago=31, refresh="spent")
    _token(_registered("recent", hours_ago=24 * 90), alice, expired_days_ago=29, refresh="spent")
    _token(_registered("valid", hours_ago=24 * 90), alice, expired_days_ago=-0.5)
    assert "Deleted 1 OAuth clients" in _prune()
    assert _left() == {"recent", "valid"}
    assert AccessToken.objects.count() == 2  # the pruned client's tokens went with it


def test_a_live_refresh_token_keeps_its_client(db, alice):
    # The access token expired long ago, but the refresh token (30 days) was issued recently.
    app = _registered("refreshing", hours_ago=24 * 90)
    _token(app, alice, expired_days_ago=31, refresh="live")
    RefreshToken.objects.update(created=NOW - dt.timedelta(days=10))
    _prune()
    assert _left() == {"refreshing"}
    RefreshToken.objects.update(created=NOW - dt.timedelta(days=61))
    _prune()
    assert _left() == set()


def test_a_client_someone_is_signing_in_to_stays(db, alice):
    app = _registered("signing in", hours_ago=25)
    Grant.objects.create(
        user=alice,
        application=app,
        code="a-code",
        expires=NOW + dt.timedelta(seconds=60),
        redirect_uri="https://claude.ai/api/mcp/auth_callback",
        scope="datasets",
    )
    _prune()
    assert _left() == {"signing in"}


def test_gpt_actions_clients_are_never_pruned(db, alice):
    with _at(NOW - dt.timedelta(days=400)):
        created = gpt_actions_client_create(name="Sales GPT")
    created.application.registration_source = "dcr"  # whatever it says, the admin made it
    created.application.save()
    _prune()
    assert _left() == {"Sales GPT"}


@pytest.mark.parametrize("option", ["--unused-hours", "--idle-days"])
def test_bad_options_are_refused(db, option):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("prune_oauth_clients", option, "0")
