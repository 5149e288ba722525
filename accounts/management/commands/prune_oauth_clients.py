"""manage.py prune_oauth_clients: delete stale self-registered OAuth clients (for cron)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.services import oauth_clients_prune


class Command(BaseCommand):
    help = (
        "Delete OAuth clients that registered themselves (MCP clients) and got no token within "
        "GATEWAY_OAUTH_CLIENT_UNUSED_HOURS (default 24) of registering, or whose tokens all "
        "expired more than --idle-days (default 30) ago. GPT Actions clients are never deleted. "
        "Run hourly or daily from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--unused-hours",
            type=int,
            default=None,
            help="Hours a new client has to get its first token, instead of the setting.",
        )
        parser.add_argument(
            "--idle-days",
            type=int,
            default=30,
            help="Days since the last token of a client expired (default 30).",
        )

    def handle(self, *args, unused_hours: int | None, idle_days: int, **options):
        if unused_hours is None:
            unused_hours = settings.GATEWAY_OAUTH_CLIENT_UNUSED_HOURS
        if unused_hours < 1:
            raise CommandError("--unused-hours must be at least 1.")
        if idle_days < 1:
            raise CommandError("--idle-days must be at least 1.")
        deleted = oauth_clients_prune(unused_hours=unused_hours, idle_days=idle_days)
        self.stdout.write(
            f"Deleted {deleted} OAuth clients: no token within {unused_hours} hours of "
            f"registering, or none valid in the last {idle_days} days."
        )
