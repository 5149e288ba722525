"""manage.py revoke_key KEY_ID: revoke a key; every process refuses it from its next request."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from keys.models import ApiKey
from keys.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key by its key id (the part after gw_, as shown in the admin)."

    def add_arguments(self, parser):
        parser.add_argument("key_id", help="The key id, e.g. Ab3dE5gH7jK9 (not the whole key).")

    def handle(self, *args, key_id: str, **options):
        key_id = key_id.strip()
        if key_id.startswith("gw_"):
            # Someone pasted the whole key: take its key id, and do not print the rest.
            key_id = key_id[3:].split("_", 1)[0]
        already = ApiKey.objects.filter(key_id=key_id, revoked=True).exists()
        try:
            key = api_key_revoke(key_id=key_id)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        state = "was already revoked" if already else "is revoked"
        self.stdout.write(f"Key {key.key_id} ({key.name}) {state}.")
