"""Access tokens made directly in the database, as the authorization server stores them."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from oauth2_provider.models import AccessToken, RefreshToken, set_token_value


def token_create(
    user,
    application,
    raw: str,
    *,
    resource: str = "http://testserver/api/v1/",
    refresh: str | None = None,
) -> AccessToken:
    """A valid access token for an hour (and its refresh token when `refresh` is given)."""
    token = AccessToken(
        user=user,
        application=application,
        scope="datasets",
        expires=timezone.now() + timedelta(hours=1),
        resource=[resource],
    )
    set_token_value(token, raw)
    token.save()
    if refresh is not None:
        stored = RefreshToken(user=user, application=application, access_token=token)
        set_token_value(stored, refresh)
        stored.save()
    return token
