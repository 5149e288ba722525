"""Admin: connected apps and people's access tokens, with revoke; no token or secret shown."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from oauth2_provider.models import AccessToken, RefreshToken, set_token_value

from accounts.models import AccessGrant
from accounts.services import gpt_actions_client_create
from tests.accounts.tokens import token_create


@pytest.fixture
def boss(db) -> Client:
    client = Client()
    client.force_login(User.objects.create(username="boss", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def connected(alice, orders):
    AccessGrant.objects.create(user=alice).datasets.set([orders])
    created = gpt_actions_client_create(name="Sales GPT")
    token = token_create(
        alice, created.application, "gwo_admin-token-0123456789", refresh="gwr_r-1"
    )
    return created, token


def _api(raw: str) -> int:
    return Client().get("/api/v1/datasets/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code


def test_the_apps_page_shows_who_and_when_but_no_secret(boss, connected):
    created, token = connected
    page = boss.get("/admin/accounts/connectedapp/").content.decode()
    assert "Sales GPT" in page and "GPT Actions" in page
    assert created.application.client_id in page
    assert created.client_secret not in page and created.application.client_secret not in page
    detail = boss.get(f"/admin/accounts/connectedapp/{created.application.pk}/change/")
    text = detail.content.decode()
    assert "1 valid now" in text
    assert created.client_secret not in text and created.application.client_secret not in text


def test_a_client_created_in_the_admin_names_its_creator(boss, db):
    response = boss.post("/admin/accounts/gptactionsclient/add/", {"name": "Finance GPT"})
    assert response.status_code == 200
    page = boss.get("/admin/accounts/connectedapp/").content.decode()
    assert "Finance GPT" in page and "boss" in page


def test_the_tokens_page_shows_the_person_and_the_app_never_thetoken_create(boss, connected):
    created, token = connected
    page = boss.get(
        f"/admin/accounts/apptoken/?application__id__exact={created.application.pk}"
    ).content.decode()
    assert "alice" in page and "Sales GPT" in page and "/api/v1/" in page
    assert "gwo_admin-token" not in page and token.token_checksum not in page
    assert (
        "gwo_admin-token"
        not in boss.get(f"/admin/accounts/apptoken/{token.pk}/change/").content.decode()
    )


def test_revoking_a_token_refuses_the_next_call_and_spends_its_refreshtoken_create(boss, connected):
    created, token = connected
    assert _api("gwo_admin-token-0123456789") == 200
    response = boss.post(
        "/admin/accounts/apptoken/",
        {"action": "revoke_selected", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    assert _api("gwo_admin-token-0123456789") == 401
    assert not AccessToken.objects.filter(pk=token.pk).exists()
    assert RefreshToken.objects.get().revoked is not None


def test_revoking_an_app_revokes_every_token_of_every_person(boss, connected, alice):
    created, token = connected
    bob = User.objects.create_user("bob")
    token_create(bob, created.application, "gwo_bob-token-0123456789")
    # A refresh token whose access token is gone can still mint one: it is revoked too.
    orphan = RefreshToken(user=bob, application=created.application)
    set_token_value(orphan, "gwr_orphan")
    orphan.save()
    other_app = gpt_actions_client_create(name="Other GPT").application
    token_create(alice, other_app, "gwo_other-app-0123456789")
    response = boss.post(
        "/admin/accounts/connectedapp/",
        {"action": "revoke_access", "_selected_action": [created.application.pk]},
    )
    assert response.status_code == 302
    assert not AccessToken.objects.filter(application=created.application).exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert _api("gwo_other-app-0123456789") == 200  # other apps keep their access


def test_a_viewer_cannot_revoke(connected, db):
    from django.contrib.auth.models import Permission

    viewer = User.objects.create(username="viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client = Client()
    client.force_login(viewer)
    created, token = connected
    client.post(
        "/admin/accounts/apptoken/", {"action": "revoke_selected", "_selected_action": [token.pk]}
    )
    assert AccessToken.objects.filter(pk=token.pk).exists()
