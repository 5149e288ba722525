"""manage.py delete_dataset SLUG [--yes]: delete a dataset, and its files on every host."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from datasets.engine.errors import suggest
from datasets.models import Dataset
from datasets.services import dataset_delete


def dataset_by_slug(slug: str) -> Dataset:
    """The dataset with this slug, or a CommandError naming the closest and the known ones."""
    dataset = Dataset.objects.filter(slug=slug).first()
    if dataset is None:
        slugs = list(Dataset.objects.values_list("slug", flat=True))
        raise CommandError(f"Unknown dataset {slug!r}." + suggest(slug, slugs, what="datasets"))
    return dataset


class Command(BaseCommand):
    help = (
        "Delete a dataset: its columns, its imports, its place in keys' scopes and, once the "
        "deletion commits, its files (this host's at once, every other host's at its next "
        "request). Asks for confirmation unless --yes."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The dataset's slug.")
        parser.add_argument(
            "--yes", action="store_true", help="Delete without asking (for scripts)."
        )

    def handle(self, *args, slug: str, yes: bool, **options):
        dataset = dataset_by_slug(slug)
        if not yes:
            rows = "no file" if dataset.row_count is None else f"{dataset.row_count} rows"
            try:
                answer = input(
                    f"Delete dataset {slug!r} ({dataset.title}, {rows}) and its files? "
                    "Type 'yes' to delete: "
                )
            except EOFError:  # no terminal: a script that forgot --yes
                answer = ""
            if answer.strip().lower() != "yes":
                raise CommandError(f"Dataset {slug!r} was not deleted: type yes, or pass --yes.")
        dataset_delete(dataset=dataset)
        self.stdout.write(
            f"Deleted {slug}: its files are gone from this host, and leave every other host at "
            "its next request."
        )
