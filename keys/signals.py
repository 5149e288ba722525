"""Any change to a key, its scope or its row filters makes every process re-read the keys."""

from __future__ import annotations

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from keys.models import ApiKey, KeyRowFilter
from keys.selectors import keys_changed


@receiver([post_save, post_delete], sender=ApiKey)
@receiver([post_save, post_delete], sender=KeyRowFilter)
@receiver(m2m_changed, sender=ApiKey.datasets.through)
def _keys_changed(**kwargs) -> None:
    keys_changed()
