"""How OAuth appears in the OpenAPI schema: the authorization-code flow (GATEWAY_SCHEMA_AUTH=oauth)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from datasets.schema.generator import SECURITY_SCHEME, security_scheme

SCOPE = "datasets"


def oauth_scheme(server_url: str) -> dict:
    """The OAuth 2 authorization-code flow of this server, for the GPT Builder."""
    base = server_url.rstrip("/")
    return {
        "type": "oauth2",
        "description": "Sign in with your Gateway account: the app reads what you are granted.",
        "flows": {
            "authorizationCode": {
                "authorizationUrl": f"{base}/oauth/authorize/",
                "tokenUrl": f"{base}/oauth/token/",
                "refreshUrl": f"{base}/oauth/token/",
                "scopes": {SCOPE: "Read the datasets you are granted"},
            }
        },
    }


class OAuthTokenScheme(OpenApiAuthenticationExtension):
    """OAuth access tokens: the same requirement as API keys in the one declared scheme."""

    target_class = "accounts.authentication.OAuthTokenAuthentication"
    # Another name for drf-spectacular; the document keeps one scheme, SECURITY_SCHEME
    # (datasets/schema/generator.py document_complete).
    name = f"{SECURITY_SCHEME}OAuth"

    def get_security_definition(self, auto_schema):
        return security_scheme()
