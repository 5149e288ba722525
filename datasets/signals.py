"""Any change to sources, datasets or columns invalidates the cached catalog in every process."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from datasets.models import Column, Dataset, PrivacyPolicy, Source
from datasets.selectors import catalog_changed


@receiver([post_save, post_delete], sender=Source)
@receiver([post_save, post_delete], sender=Dataset)
@receiver([post_save, post_delete], sender=Column)
@receiver([post_save, post_delete], sender=PrivacyPolicy)
def _catalog_changed(**kwargs) -> None:
    catalog_changed()
