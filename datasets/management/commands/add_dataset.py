"""manage.py add_dataset: register a table or view of a source as a dataset."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from datasets.management.commands.discover_source import source_by_name
from datasets.management.options import pii_options
from datasets.sources import SourceError, dataset_register


class Command(BaseCommand):
    help = (
        "Register a table or view of a source as a dataset: columns, types, primary key and "
        "statistics come from the source."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", required=True, help="The source's name.")
        parser.add_argument("--table", required=True, help="Table or view (or schema.table).")
        parser.add_argument("--slug", required=True, help="URL name, e.g. orders.")
        parser.add_argument("--schema", default="", help="Schema, if not the default one.")
        parser.add_argument(
            "--primary-key",
            default=None,
            help="Primary key column (default: the table's own single-column key).",
        )
        parser.add_argument(
            "--pii",
            nargs="+",
            action="extend",
            default=[],
            metavar="COLUMN=MODE",
            help="Protect a column: mask, hash or hide (repeatable).",
        )
        parser.add_argument("--title", default=None, help="Title (default: from the table name).")
        parser.add_argument("--description", default="", help="At most 300 characters.")

    def handle(self, *args, **options):
        source = source_by_name(options["source"])
        try:
            dataset = dataset_register(
                source=source,
                table=options["table"],
                slug=options["slug"],
                schema_name=options["schema"],
                title=options["title"],
                description=options["description"],
                primary_key=options["primary_key"],
                pii=pii_options(options["pii"]),
            )
        except SourceError as error:
            raise CommandError(error.message) from None
        columns = dataset.columns.count()
        key = dataset.primary_key or "none (no row-by-key operation)"
        rows = "unknown" if dataset.row_count is None else f"{dataset.row_count}"
        self.stdout.write(
            f"Registered dataset {dataset.slug!r} from {source.name}.{dataset.table}: "
            f"{columns} columns, primary key {key}, {rows} rows. "
            f"Served at /api/v1/datasets/{dataset.slug}/"
        )
