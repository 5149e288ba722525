from django.apps import AppConfig


class KeysConfig(AppConfig):
    """API keys: authentication, scopes, rate limits and usage."""

    name = "keys"
    default_auto_field = "django.db.models.BigAutoField"
