"""manage.py prune_usage: delete usage records older than GATEWAY_USAGE_RETENTION_DAYS (for cron)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from keys.usage import usage_prune


class Command(BaseCommand):
    help = "Delete usage records older than GATEWAY_USAGE_RETENTION_DAYS (default 90). Run daily from cron."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=None, help="Keep this many days instead of the setting."
        )

    def handle(self, *args, days: int | None, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1.")
        deleted = usage_prune(days=days)
        keep = days if days is not None else settings.GATEWAY_USAGE_RETENTION_DAYS
        self.stdout.write(f"Deleted {deleted} usage records older than {keep} days.")
