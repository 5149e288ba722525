"""How OAuth access tokens appear in the OpenAPI schema: as the one declared security scheme
(the flow itself: datasets/schema/generator.py oauth_scheme, for GATEWAY_SCHEMA_AUTH=oauth)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from datasets.schema.generator import SECURITY_SCHEME, security_scheme


class OAuthTokenScheme(OpenApiAuthenticationExtension):
    """OAuth access tokens: the same requirement as API keys in the one declared scheme."""

    target_class = "accounts.authentication.OAuthTokenAuthentication"
    # Another name for drf-spectacular; the document keeps one scheme, SECURITY_SCHEME
    # (datasets/schema/generator.py document_complete).
    name = f"{SECURITY_SCHEME}OAuth"

    def get_security_definition(self, auto_schema):
        return security_scheme()
