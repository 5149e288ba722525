"""manage.py prune_store [--retention-hours H]: remove superseded versions from the object store."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from datasets.services import stored_versions_prune
from datasets.store import StoreUnavailable, store_configured, store_name


class Command(BaseCommand):
    help = (
        "Remove from the object store (GATEWAY_STORAGE_URL) the versions superseded by a newer "
        "import, or whose dataset was deleted, more than the retention period ago, and uploads "
        "that no import kept. Run it from cron on one host, e.g. hourly."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--retention-hours",
            type=int,
            default=None,
            help="Keep superseded versions this long (default GATEWAY_STORAGE_RETENTION_HOURS).",
        )

    def handle(self, *args, retention_hours: int | None, **options):
        if not store_configured():
            raise CommandError("GATEWAY_STORAGE_URL is not set: versions are local files only.")
        hours = (
            settings.GATEWAY_STORAGE_RETENTION_HOURS if retention_hours is None else retention_hours
        )
        if hours < 1:
            raise CommandError(
                f"--retention-hours {hours}: keep superseded versions at least 1 hour, so that "
                "no host loses a file it is still reading."
            )
        try:
            versions, leftovers = stored_versions_prune(retention_hours=hours)
        except StoreUnavailable as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Removed {versions} superseded version(s) and {leftovers} leftover upload(s) from "
            f"{store_name()} (older than {hours} h)."
        )
