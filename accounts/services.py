"""Writes: a user and the user's grant, and the OAuth client of a GPT's Actions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model

from accounts.models import AccessGrant, GptActionsClient, GrantRowFilter
from datasets.models import Dataset
from keys.models import validate_rate
from keys.services import RowFilter


def _datasets(slugs: Iterable[str]) -> list[Dataset]:
    slugs = list(dict.fromkeys(slugs))
    found = {dataset.slug: dataset for dataset in Dataset.objects.filter(slug__in=slugs)}
    missing = [slug for slug in slugs if slug not in found]
    if missing:
        known = ", ".join(Dataset.objects.order_by("slug").values_list("slug", flat=True))
        raise ValidationError(
            f"Unknown dataset {', '.join(missing)}; datasets: {known or 'none yet'}."
        )
    return [found[slug] for slug in slugs]


@dataclass(frozen=True)
class UserGrant:
    """A user and the grant the user now holds; `created` says whether the user is new."""

    user: object
    grant: AccessGrant
    created: bool


@transaction.atomic
def user_grant_set(
    *,
    username: str,
    password: str | None,
    all_datasets: bool = False,
    datasets: Iterable[str] = (),
    row_filters: Iterable[RowFilter] = (),
    rate: str = "",
    quota_per_day: int | None = None,
) -> UserGrant:
    """Create or update a user who signs in through OAuth, and replace the user's own grant."""
    username = username.strip()
    if not username:
        raise ValidationError("A user needs a username.")
    scope = [] if all_datasets else _datasets(datasets)
    if not all_datasets and not scope:
        raise ValidationError(
            "Choose at least one dataset, or all: a grant of nothing reads nothing."
        )
    if rate:
        validate_rate(rate)
    if quota_per_day is not None and quota_per_day < 1:
        raise ValidationError("The daily quota must be at least 1 request.")
    users = get_user_model()
    user = users.objects.filter(username=username).first()
    created = user is None
    if created:
        if not password:
            raise ValidationError("A new user needs a password.")
        user = users(username=username)
    if password:
        validate_password(password, user)
        user.set_password(password)
    user.is_active = True
    user.save()
    grant, _ = AccessGrant.objects.update_or_create(
        user=user,
        defaults={"all_datasets": all_datasets, "rate": rate, "quota_per_day": quota_per_day},
    )
    grant.datasets.set(scope)
    grant.row_filters.all().delete()
    in_scope = {dataset.slug for dataset in scope}
    seen: set[tuple[str, str]] = set()
    for row_filter in row_filters:
        (dataset,) = _datasets([row_filter.slug])
        if not all_datasets and dataset.slug not in in_scope:
            raise ValidationError(
                f"Row filter on {dataset.slug}, which is not granted "
                f"({', '.join(sorted(in_scope)) or 'no datasets'})."
            )
        if (dataset.slug, row_filter.column) in seen:
            raise ValidationError(
                f"Two row filters on {dataset.slug}.{row_filter.column}: give one value per column."
            )
        seen.add((dataset.slug, row_filter.column))
        record = GrantRowFilter(
            grant=grant, dataset=dataset, column=row_filter.column, value=row_filter.value
        )
        record.clean()
        record.save()
    return UserGrant(user=user, grant=grant, created=created)


@dataclass(frozen=True)
class CreatedClient:
    """A new confidential client and its secret, which is shown this once and stored hashed."""

    application: object
    client_secret: str

    def __repr__(self) -> str:
        return f"CreatedClient(client_id={self.application.client_id!r})"


@transaction.atomic
def gpt_actions_client_create(*, name: str) -> CreatedClient:
    """Create the confidential OAuth client one custom GPT's Actions sign in with."""
    name = name.strip()
    if not name:
        raise ValidationError("The client needs a name, e.g. the GPT's name.")
    applications = get_application_model()
    secret = generate_client_secret()
    application = applications.objects.create(
        name=name[:255],
        client_type=applications.CLIENT_CONFIDENTIAL,
        authorization_grant_type=applications.GRANT_AUTHORIZATION_CODE,
        client_secret=secret,
        hash_client_secret=True,
        # The GPT Builder's callback carries the GPT's id, known only once the GPT is saved:
        # the validator accepts the pattern for this client (accounts/oauth.py).
        redirect_uris="",
    )
    GptActionsClient.objects.create(application=application)
    return CreatedClient(application=application, client_secret=secret)
