"""Authentication of API calls by key (Authorization: Bearer or X-API-Key)."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication


class ApiKeyAuthentication(BaseAuthentication):
    """Placeholder until keys land: authenticates nobody."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
