"""manage.py demo: the demo sales dataset, an admin user and a demo key, printed for `make run`."""

from __future__ import annotations

import os
import secrets
import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from datasets.demo import demo_load
from datasets.services import DatasetImportError

BASE_URL = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = "Load the demo `sales` dataset, create an admin user and a demo key, and print them."

    def add_arguments(self, parser):
        parser.add_argument(
            "--rows", type=int, default=100_000, help="Rows of demo sales (default 100000)."
        )
        parser.add_argument(
            "--new-key",
            action="store_true",
            help="Give the demo key a new secret and print it (the old one stops working).",
        )

    def handle(self, *args, rows: int, new_key: bool = False, **options):
        if rows < 1:
            raise CommandError("--rows must be at least 1.")
        started = time.monotonic()
        try:
            # Skipped quickly when already loaded with the same rows, so `make run` starts fast.
            dataset, loaded = demo_load(rows=rows)
        except DatasetImportError as error:
            raise CommandError(f"Could not load the demo dataset: {error}") from None
        if loaded:
            sys.stderr.write(
                f"Loaded the demo dataset '{dataset.slug}' ({dataset.row_count} rows) in "
                f"{time.monotonic() - started:.1f} s.\n"
            )

        password_line = self._admin_password()

        from keys.services import api_key_demo

        key, raw_key = api_key_demo(new_secret=new_key)
        if raw_key:
            key_lines = [
                f"  API key:  {raw_key}   (shown once: keep it)",
                f"  Try:      curl -H 'Authorization: Bearer {raw_key}' {BASE_URL}/api/v1/datasets/",
            ]
        else:
            key_lines = [
                f"  API key:  gw_{key.key_id}_… (unchanged, printed when it was made; "
                "`make run DEMO=--new-key` or `manage.py demo --new-key` gives it a new secret)",
            ]

        lines = [
            "",
            f"Gateway is starting on {BASE_URL}",
            f"  Admin:    {BASE_URL}/admin/",
            password_line,
            f"  Dataset:  {dataset.slug} ({dataset.row_count} rows)  "
            f"{BASE_URL}/api/v1/datasets/{dataset.slug}/",
            f"  Rows:     {BASE_URL}/api/v1/datasets/{dataset.slug}/rows/?limit=5",
            f"  Q2 sales: {BASE_URL}/api/v1/datasets/{dataset.slug}/aggregate/"
            "?order_date__gte=2024-04-01&order_date__lte=2024-06-30&group_by=product"
            "&metrics=sum:revenue&ordering=-sum_revenue",
            f"  Schema:   {BASE_URL}/openapi.json",
            *key_lines,
        ]
        self.stdout.write("\n".join(lines))

    def _admin_password(self) -> str:
        """Create the admin user once; its password line (printed only when it was set now)."""
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        password = os.environ.get("GATEWAY_ADMIN_PASSWORD")
        if password is None and (created or not user.has_usable_password()):
            password = secrets.token_urlsafe(12)
        if password is not None:
            user.set_password(password)
        user.save()
        if password is None:
            return (
                "  User:     admin   Password: unchanged (printed when it was made; "
                "`manage.py changepassword admin` sets a new one)"
            )
        return f"  User:     admin   Password: {password}"
