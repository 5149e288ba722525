"""manage.py issue_key NAME: issue an API key; the raw key is printed alone on the last line."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from keys.services import RowFilter, api_key_issue

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ROW_FILTER = re.compile(r"^([a-z][a-z0-9_]*):([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


def parse_duration(text: str) -> timedelta:
    """30d, 12h, 90m, 2w or 3600s."""
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise CommandError(
            f"--expires-in {text!r} is not a duration: use a number and a unit, "
            "such as 30d, 12h, 90m, 2w or 3600s."
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_row_filter(text: str) -> RowFilter:
    """SLUG:COLUMN=VALUE."""
    match = _ROW_FILTER.match(text)
    if match is None:
        raise CommandError(
            f"--row-filter {text!r} is not SLUG:COLUMN=VALUE (e.g. sales:region=EU)."
        )
    return RowFilter(slug=match.group(1), column=match.group(2), value=match.group(3))


class Command(BaseCommand):
    help = (
        "Issue an API key. Prints its key id and details, and the raw key alone on the last "
        "line: it is shown this once and never stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the key is for, e.g. 'Sales GPT'.")
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--datasets", help="Comma-separated slugs of the datasets in scope.")
        scope.add_argument("--all", action="store_true", help="Every dataset, present and future.")
        parser.add_argument("--owner", default="", help="Owner or contact.")
        parser.add_argument(
            "--rate", default="", help="Rate limit such as 60/m (default: GATEWAY_DEFAULT_RATE)."
        )
        parser.add_argument("--quota-per-day", type=int, default=None, help="Requests per UTC day.")
        parser.add_argument("--expires-in", default=None, help="Lifetime such as 30d, 12h, 2w.")
        parser.add_argument(
            "--row-filter",
            action="append",
            default=[],
            metavar="SLUG:COLUMN=VALUE",
            help="Only rows where COLUMN equals VALUE in dataset SLUG (repeatable).",
        )

    def handle(
        self,
        *args,
        name,
        datasets,
        all,
        owner,
        rate,
        quota_per_day,
        expires_in,
        row_filter,
        **options,
    ):
        slugs = [slug.strip() for slug in (datasets or "").split(",") if slug.strip()]
        if datasets is not None and not slugs:
            raise CommandError("--datasets needs at least one dataset slug, e.g. --datasets sales.")
        if quota_per_day is not None and quota_per_day < 1:
            raise CommandError("--quota-per-day must be at least 1.")
        expires_at = timezone.now() + parse_duration(expires_in) if expires_in else None
        filters = [parse_row_filter(text) for text in row_filter]
        try:
            issued = api_key_issue(
                name=name,
                owner=owner,
                all_datasets=all,
                datasets=slugs,
                row_filters=filters,
                rate=rate,
                quota_per_day=quota_per_day,
                expires_at=expires_at,
            )
        except ValidationError as error:
            raise CommandError(" ".join(validation_messages(error))) from None
        key = issued.key
        lines = [
            f"Key id:    {key.key_id}",
            f"Name:      {key.name}",
            *access_lines(
                "Scope",
                all_datasets=key.all_datasets,
                slugs=slugs,
                rate=key.rate,
                quota_per_day=key.quota_per_day,
            ),
            f"Expires:   {key.expires_at:%Y-%m-%d %H:%M UTC}"
            if key.expires_at
            else "Expires:   never",
            *(f"Row filter: {f.slug}: {f.column} = {f.value}" for f in filters),
            "The key (shown this once, store it now):",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.write(issued.raw_key)


def access_lines(
    label: str, *, all_datasets: bool, slugs: list[str], rate: str, quota_per_day: int | None
) -> list[str]:
    """What a key or a grant may read and spend, as issue_key and add_user print it."""
    return [
        f"{label + ':':<10} {'all datasets' if all_datasets else ', '.join(slugs)}",
        f"Rate:      {rate or 'default (GATEWAY_DEFAULT_RATE)'}",
        f"Quota:     {f'{quota_per_day} requests per day' if quota_per_day else 'none'}",
    ]


def validation_messages(error: ValidationError) -> list[str]:
    """The messages of a ValidationError, field by field, for a command's error line."""
    if hasattr(error, "message_dict"):
        return [message for messages in error.message_dict.values() for message in messages]
    return list(error.messages)
