"""manage.py store_versions: put the uploads this host holds into the object store."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from datasets.models import Dataset
from datasets.services import dataset_versions_store
from datasets.store import StoreUnavailable, store_configured, store_name


class Command(BaseCommand):
    help = (
        "Write to the object store (GATEWAY_STORAGE_URL) the current version of every uploaded "
        "dataset imported before the store was configured, so that every host can serve it. Run "
        "it once on the host that imported them."
    )

    def handle(self, *args, **options):
        if not store_configured():
            raise CommandError("GATEWAY_STORAGE_URL is not set: there is no object store to fill.")
        try:
            written = dataset_versions_store()
        except StoreUnavailable as error:
            raise CommandError(str(error)) from None
        for slug in written:
            self.stdout.write(f"Stored {slug}.")
        missing = list(
            Dataset.objects.filter(source=None, version__gt=0, file_checksum="").values_list(
                "slug", flat=True
            )
        )
        self.stdout.write(f"{len(written)} version(s) written to {store_name()}.")
        if missing:
            raise CommandError(
                f"Not on this host, so not stored: {', '.join(missing)}. Run store_versions on "
                "the host that imported them."
            )
