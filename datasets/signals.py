"""Any change to sources, datasets or columns invalidates the cached catalog in every process, and a
deleted dataset's files leave this host once the deletion commits (datasets/files.py)."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete
from django.utils import timezone

from datasets.files import dataset_files_sweep
from datasets.models import Column, Dataset, PrivacyPolicy, Source, StoredVersion
from gatewaysite.generations import track

track(Source, Dataset, Column, PrivacyPolicy, name="catalog")
# A key's scope names datasets: a deleted dataset leaves the key table too.
track(Dataset, name="keys")


def _dataset_deleted(sender, instance, using, **kwargs) -> None:
    # Every deletion path sends this (the admin's delete and bulk action, Model.delete(),
    # QuerySet.delete(), delete_dataset): the files go after the commit, never on a rollback.
    # Other hosts sweep theirs when they see the catalog's generation move.
    # Its versions in the object store go after the retention period (manage.py prune_store):
    # a host may still be reading one.
    StoredVersion.objects.using(using).filter(
        slug=instance.slug, file_name__contains=instance.file_stamp, superseded=None
    ).update(superseded=timezone.now())
    connection = transaction.get_connection(using)
    if connection.in_atomic_block and any(
        callback is dataset_files_sweep for _, callback, _ in connection.run_on_commit
    ):
        return  # one sweep per transaction, however many datasets it deletes
    transaction.on_commit(dataset_files_sweep, using=using, robust=True)


post_delete.connect(_dataset_deleted, sender=Dataset, dispatch_uid="gateway-dataset-files")
