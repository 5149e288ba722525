"""manage.py import_dataset: import a CSV/TSV, XLSX, JSON, NDJSON or Parquet file as a dataset."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.ingest import IMPORT_SECONDS, Budget
from datasets.management.options import pii_options
from datasets.services import DatasetImportError, dataset_import


class Command(BaseCommand):
    help = (
        "Import a file (CSV/TSV, XLSX, JSON array, NDJSON or Parquet) as a dataset: columns, types "
        "and primary key are inferred; --replace uploads a new version of an existing dataset."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The file to import.")
        parser.add_argument("--slug", required=True, help="URL name, e.g. sales.")
        parser.add_argument("--title", default=None, help="Title (default: from the slug).")
        parser.add_argument(
            "--description", default=None, help="At most 300 characters (shown to the GPT)."
        )
        parser.add_argument(
            "--primary-key",
            default=None,
            help="Primary key column (default: a unique integer column such as id, else a row_id).",
        )
        parser.add_argument(
            "--pii",
            nargs="+",
            action="extend",
            default=[],
            metavar="COLUMN=MODE",
            help="Protect a column: mask, hash or hide (repeatable).",
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Replace the file of an existing dataset (the previous version serves until done).",
        )
        parser.add_argument(
            "--time-limit",
            type=float,
            default=IMPORT_SECONDS,
            metavar="SECONDS",
            help=f"Give up an import that takes longer (default {IMPORT_SECONDS:g}).",
        )

    def handle(self, *args, **options):
        pii = pii_options(options["pii"])
        if options["time_limit"] <= 0:
            raise CommandError("--time-limit must be more than 0 seconds.")
        show_bar = options.get("verbosity", 1) > 0
        with tqdm(
            total=100,
            desc="Importing",
            unit="%",
            file=sys.stderr,
            disable=not show_bar,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}",
        ) as bar:

            def progress(percent: float) -> None:
                bar.update(max(0.0, percent - bar.n))

            try:
                dataset = dataset_import(
                    path=options["path"],
                    slug=options["slug"],
                    title=options["title"],
                    description=options["description"],
                    primary_key=options["primary_key"],
                    pii=pii,
                    replace=options["replace"],
                    progress=progress,
                    budget=Budget(seconds=options["time_limit"]),
                )
            except DatasetImportError as error:
                raise CommandError(str(error)) from None

        columns = list(dataset.columns.order_by("position"))
        lines = [
            f"Imported {dataset.slug} (version {dataset.version}): {dataset.row_count} rows, "
            f"primary key {dataset.primary_key}",
        ]
        width = max(len(column.name) for column in columns)
        for column in columns:
            extra = f"  pii={column.pii}" if column.pii != "none" else ""
            lines.append(f"  {column.name.ljust(width)}  {column.type}{extra}")
        self.stdout.write("\n".join(lines))
