from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People who sign in through OAuth: their grants, the sign-in and consent pages, tokens."""

    name = "accounts"
    verbose_name = "People and connected apps"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from oauth2_provider.models import get_access_token_model, get_application_model

        from accounts.models import AccessGrant, GrantRowFilter
        from gatewaysite.generations import track

        # Grant row filters decide what the public schema may publish (cached under "keys").
        track(AccessGrant, GrantRowFilter, name="keys")
        # What an access token may read (accounts/authentication.py, cached under "oauth").
        user = get_user_model()
        track(
            AccessGrant,
            GrantRowFilter,
            AccessGrant.datasets.through,
            get_access_token_model(),
            get_application_model(),
            user,
            user.groups.through,
            Group,
            name="oauth",
        )
