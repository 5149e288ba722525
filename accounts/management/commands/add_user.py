"""manage.py add_user USERNAME --password-stdin (--datasets a,b | --all) [--row-filter ...]."""

from __future__ import annotations

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import user_grant_set
from keys.management.commands.issue_key import (
    access_lines,
    parse_row_filter,
    validation_messages,
)


class Command(BaseCommand):
    help = (
        "Create (or update) a user who may sign in through OAuth, with that grant: the "
        "datasets the user's apps may read."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from standard input (required for a new user).",
        )
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--datasets", help="Comma-separated slugs of the datasets granted.")
        scope.add_argument("--all", action="store_true", help="Every dataset, present and future.")
        parser.add_argument(
            "--rate", default="", help="Rate limit such as 60/m (default: GATEWAY_DEFAULT_RATE)."
        )
        parser.add_argument("--quota-per-day", type=int, default=None, help="Requests per UTC day.")
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
        username,
        password_stdin,
        datasets,
        all,
        rate,
        quota_per_day,
        row_filter,
        **options,
    ):
        password = None
        if password_stdin:
            password = sys.stdin.read().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin read an empty password.")
        slugs = [slug.strip() for slug in (datasets or "").split(",") if slug.strip()]
        if datasets is not None and not slugs:
            raise CommandError("--datasets needs at least one dataset slug, e.g. --datasets sales.")
        filters = [parse_row_filter(text) for text in row_filter]
        try:
            done = user_grant_set(
                username=username,
                password=password,
                all_datasets=all,
                datasets=slugs,
                row_filters=filters,
                rate=rate,
                quota_per_day=quota_per_day,
            )
        except ValidationError as error:
            raise CommandError(" ".join(validation_messages(error))) from None
        grant = done.grant
        lines = [
            f"{'Created' if done.created else 'Updated'} user {done.user.get_username()}.",
            *access_lines(
                "Datasets",
                all_datasets=grant.all_datasets,
                slugs=slugs,
                rate=grant.rate,
                quota_per_day=grant.quota_per_day,
            ),
            *(f"Row filter: {f.slug}: {f.column} = {f.value}" for f in filters),
        ]
        self.stdout.write("\n".join(lines))
