from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People who sign in through OAuth: their grants, the sign-in and consent pages, tokens."""

    name = "accounts"
    verbose_name = "People and connected apps"

    def ready(self) -> None:
        # Registers the schema extension of OAuth tokens with drf-spectacular.
        from accounts import schema  # noqa: F401
        from accounts.models import AccessGrant, GrantRowFilter
        from gatewaysite.generations import track

        # Grant row filters decide what the public schema may publish (cached under "keys").
        track(AccessGrant, GrantRowFilter, name="keys")
