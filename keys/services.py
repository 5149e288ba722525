"""Writes of API keys: issue, revoke, rotate. The raw key exists only in the IssuedKey returned."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets.models import Dataset
from keys.models import KEY_PREFIX, ApiKey, KeyRowFilter, validate_rate

_ALPHABET = string.ascii_letters + string.digits
KEY_ID_LENGTH = 12
# 40 characters of 62 symbols: about 238 bits, well above the 128 the contract asks for.
SECRET_LENGTH = 40


@dataclass(frozen=True)
class IssuedKey:
    """A key just issued or rotated: the only place where the raw key ever exists."""

    key: ApiKey
    raw_key: str

    @property
    def key_id(self) -> str:
        return self.key.key_id

    def __repr__(self) -> str:
        # Never let the raw key reach a log line through a repr.
        return f"IssuedKey(key_id={self.key.key_id!r})"


@dataclass(frozen=True)
class RowFilter:
    """A row filter to give a key: on dataset `slug`, only rows where `column` equals `value`."""

    slug: str
    column: str
    value: str


def key_hash(raw_key: str) -> str:
    """The keyed hash (HMAC-SHA256 under SECRET_KEY) that is all the database keeps of a key."""
    return hmac.new(settings.SECRET_KEY.encode(), raw_key.encode(), hashlib.sha256).hexdigest()


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _new_raw_key(key_id: str) -> str:
    return f"{KEY_PREFIX}{key_id}_{_random(SECRET_LENGTH)}"


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


def _row_filters(
    key: ApiKey, row_filters: Iterable[RowFilter], *, all_datasets: bool, scope: list[Dataset]
) -> None:
    in_scope = {dataset.slug for dataset in scope}
    for row_filter in row_filters:
        (dataset,) = _datasets([row_filter.slug])
        if not all_datasets and dataset.slug not in in_scope:
            raise ValidationError(
                f"Row filter on {dataset.slug}, which is not in the key's scope "
                f"({', '.join(sorted(in_scope)) or 'no datasets'})."
            )
        record = KeyRowFilter(
            key=key, dataset=dataset, column=row_filter.column, value=row_filter.value
        )
        record.clean()
        try:
            with transaction.atomic():
                record.save()
        except IntegrityError:
            raise ValidationError(
                f"Two row filters on {dataset.slug}.{row_filter.column}: give one value per column."
            ) from None


@transaction.atomic
def api_key_issue(
    *,
    name: str,
    owner: str = "",
    all_datasets: bool = False,
    datasets: Iterable[str] = (),
    row_filters: Iterable[RowFilter] = (),
    rate: str = "",
    quota_per_day: int | None = None,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Create a key for the datasets named by slug (or all) and return it with its raw key, once."""
    if not name.strip():
        raise ValidationError("A key needs a name.")
    if rate:
        validate_rate(rate)
    if quota_per_day is not None and quota_per_day < 1:
        raise ValidationError("The daily quota must be at least 1 request.")
    scope = [] if all_datasets else _datasets(datasets)
    key = ApiKey(
        name=name.strip(),
        owner=owner,
        all_datasets=all_datasets,
        rate=rate,
        quota_per_day=quota_per_day,
        expires_at=expires_at,
    )
    raw_key = api_key_set_secret(key=key)
    key.save()
    key.datasets.set(scope)
    _row_filters(key, row_filters, all_datasets=all_datasets, scope=scope)
    return IssuedKey(key=key, raw_key=raw_key)


def api_key_set_secret(*, key: ApiKey) -> str:
    """Give an unsaved key its key id and hash; return the raw key (the admin's add form uses it)."""
    if not key.key_id:
        # 12 characters of 62 symbols: collisions are negligible, and the unique index
        # would refuse one rather than let two keys share an id.
        key.key_id = _random(KEY_ID_LENGTH)
    raw_key = _new_raw_key(key.key_id)
    key.secret_hash = key_hash(raw_key)
    return raw_key


def _get(key_id: str) -> ApiKey:
    try:
        return ApiKey.objects.get(key_id=key_id)
    except ApiKey.DoesNotExist:
        raise ValidationError(f"No key with id {key_id!r}.") from None


def api_key_revoke(*, key_id: str) -> ApiKey:
    """Revoke a key: every process refuses it from its next request on."""
    key = _get(key_id)
    if not key.revoked:
        key.revoked = True
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked", "revoked_at"])
    return key


def api_key_rotate(*, key_id: str) -> IssuedKey:
    """Give a key a new secret (same key id, scope and usage history); the old key stops working."""
    key = _get(key_id)
    if key.revoked:
        raise ValidationError(f"Key {key_id} is revoked: issue a new key instead.")
    raw_key = api_key_set_secret(key=key)
    key.rotated_at = timezone.now()
    key.save(update_fields=["secret_hash", "rotated_at"])
    return IssuedKey(key=key, raw_key=raw_key)


DEMO_KEY_NAME = "Demo key (make run)"


def api_key_demo(*, new_secret: bool = False) -> tuple[ApiKey, str | None]:
    """The demo key of `make run`, for all datasets, and its raw key when it was just made.

    The key is created once and kept across runs, so a GPT set up with it keeps working; with
    `new_secret` an existing key is rotated (its old secret stops working) to print a new one.
    """
    key = ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked=False).order_by("-created").first()
    if key is None:
        issued = api_key_issue(name=DEMO_KEY_NAME, owner="manage.py demo", all_datasets=True)
        return issued.key, issued.raw_key
    if new_secret:
        issued = api_key_rotate(key_id=key.key_id)
        return issued.key, issued.raw_key
    return key, None
