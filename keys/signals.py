"""Any change to a key, its scope or its row filters makes every process re-read the keys."""

from __future__ import annotations

from gatewaysite.generations import track
from keys.models import ApiKey, KeyRowFilter

track(ApiKey, KeyRowFilter, ApiKey.datasets.through, name="keys")
