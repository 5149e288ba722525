"""Writes: a user and the user's grant, the OAuth client of a GPT's Actions, pruning stale
client registrations, counting registrations per address, spent authorization codes, and
revoking an app's tokens."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django_ratelimit.core import _split_rate
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import (
    Application,
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
)
from oauth2_provider.settings import oauth2_settings

from accounts.models import (
    AccessGrant,
    ClientRegistration,
    GptActionsClient,
    GrantRowFilter,
    SpentAuthorizationCode,
)
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

    user: AbstractBaseUser
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
    found = users.objects.filter(username=username).first()
    created = found is None
    if found is None:
        if not password:
            raise ValidationError("A new user needs a password.")
        found = users(username=username)
    user = found
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

    application: Application
    client_secret: str

    def __repr__(self) -> str:
        return f"CreatedClient(client_id={self.application.client_id!r})"


@transaction.atomic
def gpt_actions_client_create(*, name: str, created_by=None) -> CreatedClient:
    """Create the confidential OAuth client one custom GPT's Actions sign in with."""
    name = name.strip()
    if not name:
        raise ValidationError("The client needs a name, e.g. the GPT's name.")
    applications = get_application_model()
    secret = generate_client_secret()
    application = applications.objects.create(
        name=name[:255],
        user=created_by,
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


def _stale_clients(*, unused_hours: int, idle_days: int, now: datetime) -> QuerySet:
    """Self-registered clients (RFC 7591 or metadata documents) that no one uses."""
    applications = get_application_model()
    tokens, refresh_tokens = get_access_token_model(), get_refresh_token_model()
    registered = applications.objects.filter(
        registration_source__in=[
            applications.RegistrationSource.DCR,
            applications.RegistrationSource.CIMD,
        ],
        gpt_actions__isnull=True,  # the admin's clients are never pruned
    )
    # A person's tokens; DCR's registration access token (RFC 7592) has no user and never expires.
    own = {"application": OuterRef("pk"), "user__isnull": False}
    # Someone is signing in right now: the code is issued, the token not yet.
    signing_in = Exists(get_grant_model().objects.filter(**own, expires__gt=now))
    ever_used = Exists(tokens.objects.filter(**own)) | Exists(refresh_tokens.objects.filter(**own))
    unused = Q(created__lt=now - timedelta(hours=unused_hours)) & ~ever_used
    cutoff = now - timedelta(days=idle_days)
    live_refresh = Q(revoked__gte=cutoff)
    lifetime = oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS
    if lifetime is None:
        live_refresh |= Q(revoked__isnull=True)
    else:
        live_refresh |= Q(revoked__isnull=True, created__gte=cutoff - timedelta(seconds=lifetime))
    idle = Q(created__lt=cutoff) & ~(
        Exists(tokens.objects.filter(**own, expires__gte=cutoff))
        | Exists(refresh_tokens.objects.filter(live_refresh, **own))
    )
    return registered.filter(unused | idle).exclude(signing_in)


def oauth_clients_prune(
    *, unused_hours: int, idle_days: int = 30, now: datetime | None = None
) -> int:
    """Delete the self-registered clients that got no token within `unused_hours` of their
    registration, or whose tokens all expired more than `idle_days` ago; how many went.

    Clients the admin created for GPT Actions are never pruned. A client that registers again
    gets a new client id; a metadata-document client is read again on its next request.
    """
    now = now or timezone.now()
    applications = get_application_model()
    with transaction.atomic():
        # Lock the candidates, then look again: a token issued meanwhile keeps its client.
        candidates = list(
            _stale_clients(unused_hours=unused_hours, idle_days=idle_days, now=now).values_list(
                "pk", flat=True
            )
        )
        locked = applications.objects.select_for_update().filter(pk__in=candidates)
        list(locked.values_list("pk", flat=True))
        stale = _stale_clients(unused_hours=unused_hours, idle_days=idle_days, now=now).filter(
            pk__in=candidates
        )
        deleted = list(stale.values_list("pk", flat=True))
        applications.objects.filter(pk__in=deleted).delete()
    return len(deleted)


@transaction.atomic
def app_tokens_revoke(*, token_ids: Iterable[int] = (), application_ids: Iterable[int] = ()) -> int:
    """Revoke people's access: these access tokens, or every token of these apps, each with its
    refresh token (django-oauth-toolkit's revoke()); refused from the next call. How many."""
    tokens = get_access_token_model().objects.filter(user__isnull=False)
    refresh_tokens = get_refresh_token_model().objects.filter(
        user__isnull=False, revoked__isnull=True
    )
    token_ids, application_ids = list(token_ids), list(application_ids)
    selected = Q(pk__in=token_ids) | Q(application_id__in=application_ids)
    revoked = 0
    # A refresh token's revoke() deletes its access token too; an app's refresh tokens go even
    # when their access token is gone already (it could still mint a new one).
    for refresh in refresh_tokens.filter(
        Q(access_token_id__in=token_ids) | Q(application_id__in=application_ids)
    ):
        revoked += refresh.access_token_id is not None
        refresh.revoke()
    for token in tokens.filter(selected):
        token.revoke()
        revoked += 1
    return revoked


class RegistrationLimited(Exception):
    """The client address has spent its registrations for now: `wait` seconds until the next."""

    def __init__(self, wait: int) -> None:
        super().__init__(f"retry after {wait} seconds")
        self.wait = wait


def _refuse_when_full(recent: QuerySet, count: int, seconds: int, now: datetime) -> None:
    times = list(recent.order_by("-created").values_list("created", flat=True)[:count])
    if len(times) < count:
        return
    # The oldest of the last `count` registrations is the first to leave the window.
    wait = times[-1] + timedelta(seconds=seconds) - now
    raise RegistrationLimited(max(1, math.ceil(wait.total_seconds())))


def client_registration_count(
    *, address: str, rate: str, now: datetime | None = None
) -> ClientRegistration | None:
    """Count one client registration from `address` against `rate` (such as 10/h, over the last
    hour); RegistrationLimited, counting nothing, once the limit is spent. None for a rate of 0.

    The count is kept in the database, so it holds across every worker and instance, on the
    embedded default (local-memory cache) as with Redis. Delete the record when the
    registration fails after all: only registrations that went through are counted.
    """
    count, seconds = _split_rate(rate)  # django-ratelimit's reading, as every other limit
    if count == 0:
        return None
    now = now or timezone.now()
    since = now - timedelta(seconds=seconds)
    recent = ClientRegistration.objects.filter(address=address, created__gt=since)
    _refuse_when_full(recent, count, seconds, now)  # a refused attempt writes nothing
    ClientRegistration.objects.filter(created__lte=since).delete()
    record = ClientRegistration.objects.create(address=address, created=now)
    # Two processes may both have seen room for one more: the earlier record keeps its place.
    try:
        _refuse_when_full(recent.filter(pk__lt=record.pk), count, seconds, now)
    except RegistrationLimited:
        record.delete()
        raise
    return record


# How long an exchanged code is remembered: a replay later than this is refused all the same
# (the code is gone), without revoking anything.
SPENT_CODE_SECONDS = 3600


def _checksum(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def authorization_code_spend(*, code: str, access_token: str, now: datetime | None = None) -> None:
    """Remember that `code` was exchanged for `access_token` (and its refresh token family)."""
    now = now or timezone.now()
    token = (
        get_access_token_model()
        .objects.filter(token_checksum=_checksum(access_token))
        .values_list("pk", flat=True)
        .first()
    )
    family = (
        get_refresh_token_model()
        .objects.filter(access_token_id=token)
        .values_list("token_family", flat=True)
        .first()
        if token is not None
        else None
    )
    SpentAuthorizationCode.objects.filter(expires__lte=now).delete()
    SpentAuthorizationCode.objects.update_or_create(
        code_checksum=_checksum(code),
        defaults={
            "access_token_id": token,
            "token_family": family,
            "expires": now + timedelta(seconds=SPENT_CODE_SECONDS),
        },
    )


def authorization_code_replay(*, code: str, now: datetime | None = None) -> bool:
    """A code came back after its exchange: revoke every token that exchange led to (its access
    token, its refresh token and every token refreshed from it). Whether it was such a code."""
    now = now or timezone.now()
    spent = SpentAuthorizationCode.objects.filter(
        code_checksum=_checksum(code), expires__gt=now
    ).first()
    if spent is None:
        return False
    if spent.token_family is not None:
        get_refresh_token_model().revoke_family(spent.token_family)
    if spent.access_token_id is not None:
        for token in get_access_token_model().objects.filter(pk=spent.access_token_id):
            token.revoke()
    return True
