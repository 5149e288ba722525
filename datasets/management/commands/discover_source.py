"""manage.py discover_source NAME: print a source's tables and views, one a line; registers nothing."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from datasets.models import Source
from datasets.sources import SourceError, source_discover


def source_by_name(name: str) -> Source:
    """The source with this name, or a CommandError listing the known ones."""
    try:
        return Source.objects.get(name=name)
    except Source.DoesNotExist:
        known = ", ".join(Source.objects.values_list("name", flat=True)) or "none yet (add_source)"
        raise CommandError(f"Unknown source {name!r}. Sources: {known}.") from None


class Command(BaseCommand):
    help = (
        "Print the tables and views of a source as `schema.name<TAB>table|view`; registers nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The source's name.")

    def handle(self, *args, name: str, **options):
        source = source_by_name(name)
        try:
            found = source_discover(source=source)
        except SourceError as error:
            raise CommandError(error.message) from None
        for table in found:
            self.stdout.write(f"{table.qualified_name}\t{table.kind}")
        if not found:
            self.stderr.write(f"Source {name!r} has no tables or views.")
