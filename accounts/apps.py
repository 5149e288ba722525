from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People who sign in through OAuth: their grants, the sign-in and consent pages, tokens."""

    name = "accounts"
    verbose_name = "People and connected apps"

    def ready(self) -> None:
        # Registers the schema extension of OAuth tokens with drf-spectacular.
        from accounts import schema  # noqa: F401
