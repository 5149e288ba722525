"""Any change to sources, datasets or columns invalidates the cached catalog in every process."""

from __future__ import annotations

from datasets.models import Column, Dataset, PrivacyPolicy, Source
from gatewaysite.generations import track

track(Source, Dataset, Column, PrivacyPolicy, name="catalog")
# A key's scope names datasets: a deleted dataset leaves the key table too.
track(Dataset, name="keys")
