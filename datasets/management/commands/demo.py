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

    def handle(self, *args, rows: int, **options):
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

        password = os.environ.get("GATEWAY_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()

        # --- Demo key: one key for all datasets, rotated on each run so a fresh key is printed.
        from keys.services import api_key_demo

        demo_key = api_key_demo().raw_key
        key_lines: list[str] = [
            f"  API key:  {demo_key}",
            f"  Try:      curl -H 'Authorization: Bearer {demo_key}' {BASE_URL}/api/v1/datasets/",
        ]
        # --- end of the demo key part.

        lines = [
            "",
            f"Gateway is starting on {BASE_URL}",
            f"  Admin:    {BASE_URL}/admin/",
            f"  User:     admin   Password: {password}",
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
