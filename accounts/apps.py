from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People who sign in through OAuth: their grants, the sign-in and consent pages, tokens."""

    name = "accounts"
    verbose_name = "People and connected apps"
