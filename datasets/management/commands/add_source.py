"""manage.py add_source NAME URL: add a foreign SQL source after testing its connection."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from datasets.sources import SourceError, source_create


class Command(BaseCommand):
    help = (
        "Add a SQL source (postgresql://user:pass@host:5432/db, mysql://user:pass@host:3306/db "
        "or sqlite:////path/file.db). The connection is tested first; the password is stored "
        "encrypted."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="A name for the source, e.g. shop.")
        parser.add_argument("url", help="Connection URL; a password in it is stored encrypted.")
        parser.add_argument(
            "--timeout",
            type=int,
            default=10,
            help="Statement timeout in seconds, 1 to 600 (default 10).",
        )

    def handle(self, *args, name: str, url: str, timeout: int, **options):
        try:
            source = source_create(name=name, url=url, statement_timeout=timeout)
        except SourceError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Added source {source.name!r} ({source.get_kind_display()}, {source.url}). "
            f"List its tables and views with: manage.py discover_source {source.name}"
        )
