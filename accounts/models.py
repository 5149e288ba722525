"""What a person may read: a grant held by a user or by a group, with row filters per dataset,
and the OAuth clients the admin created for GPT Actions."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application
from oauth2_provider.settings import oauth2_settings

from datasets.models import Dataset
from keys.models import DatasetRowFilter, validate_rate


class AccessGrant(models.Model):
    """The datasets (or all), row filters, rate limit and daily quota of a user or a group.

    The same policy as an API key's. A user's access is the union of the user's own grant and
    the grants of the user's groups (see docs/oauth.md, "Grants").
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_grant",
    )
    group = models.OneToOneField(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="access_grant"
    )
    all_datasets = models.BooleanField(
        "all datasets",
        default=False,
        help_text="Every dataset, present and future. Otherwise only the datasets chosen below.",
    )
    datasets = models.ManyToManyField(
        Dataset, blank=True, related_name="access_grants", help_text="Datasets this grant reads."
    )
    rate = models.CharField(
        max_length=20,
        blank=True,
        default="",
        validators=[validate_rate],
        help_text="Rate limit such as 60/m or 1000/h; empty: GATEWAY_DEFAULT_RATE.",
    )
    quota_per_day = models.PositiveIntegerField(
        "daily quota",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Requests per UTC day; empty: no quota.",
    )
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created"]
        verbose_name = "grant"
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False) & models.Q(group__isnull=True))
                | (models.Q(user__isnull=True) & models.Q(group__isnull=False)),
                name="access_grant_one_holder",
            )
        ]

    def __str__(self) -> str:
        return f"Grant to {self.holder}"

    @property
    def holder(self) -> str:
        """Who holds the grant, in words."""
        if self.user_id is not None:
            return f"user {self.user}"
        return f"group {self.group}"

    def clean(self) -> None:
        if (self.user_id is None) == (self.group_id is None):
            raise ValidationError("A grant belongs to exactly one user or one group.")


class GrantRowFilter(DatasetRowFilter):
    """A grant's row filter on one dataset."""

    grant = models.ForeignKey(AccessGrant, on_delete=models.CASCADE, related_name="row_filters")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="grant_row_filters")

    class Meta(DatasetRowFilter.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["grant", "dataset", "column"], name="grant_row_filter_unique"
            )
        ]


class GptActionsClient(models.Model):
    """An OAuth client the admin created for one custom GPT's Actions.

    Only these clients may skip PKCE (the GPT Builder sends none), and only they accept the GPT
    Builder's callback pattern https://chatgpt.com/aip/g-<GPT id>/oauth/callback.
    """

    application = models.OneToOneField(
        oauth2_settings.APPLICATION_MODEL,
        on_delete=models.CASCADE,
        related_name="gpt_actions",
    )
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "GPT Actions client"

    def __str__(self) -> str:
        return str(self.application)


class ConnectedApp(Application):
    """An OAuth client as the admin sees it: a GPT's Actions, or an MCP client that registered
    itself (RFC 7591 or a client ID metadata document). Never shows a secret."""

    class Meta:
        proxy = True
        verbose_name = "connected app"


class AppToken(AccessToken):
    """A person's access token in an app, as the admin sees it: who, which app, until when.
    The token itself is stored only as a checksum and never shown."""

    class Meta:
        proxy = True
        verbose_name = "access token"
        permissions = [("revoke_apptoken", "Can revoke access tokens")]


class ClientRegistration(models.Model):
    """One client registration (RFC 7591) from a client address, kept for the per-address limit.

    Counted in the database, not the cache, so that the limit holds across every process and
    instance on the embedded default (local-memory cache) as with Redis.
    """

    address = models.CharField(max_length=64)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["address", "created"], name="client_registration_recent")]

    def __str__(self) -> str:
        return f"Registration from {self.address} at {self.created:%Y-%m-%d %H:%M:%S}"


class SpentAuthorizationCode(models.Model):
    """An authorization code that was exchanged, and the tokens the exchange issued.

    Kept (as a SHA-256 checksum) for a while after the exchange: the same code presented again
    is refused by django-oauth-toolkit, and its tokens are revoked (RFC 6749 section 4.1.2).
    """

    code_checksum = models.CharField(max_length=64, unique=True)
    access_token_id = models.BigIntegerField(null=True)
    token_family = models.UUIDField(null=True)
    expires = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "spent authorization code"

    def __str__(self) -> str:
        return f"Spent authorization code {self.code_checksum[:8]}…"
