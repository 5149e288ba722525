"""Time to build the OpenAPI document for 25 datasets, and to fetch a cached one.

Run: .venv/bin/python bench/schema_build.py  (uses a throwaway data directory and SQLite file)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["GATEWAY_DATA_DIR"] = tempfile.mkdtemp(prefix="gateway-bench-")
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
os.environ["GATEWAY_PUBLIC_URL"] = "https://gateway.example.com"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatewaysite.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from datasets.models import Column, Dataset  # noqa: E402
from datasets.schema.build import schema_build  # noqa: E402
from datasets.selectors import dataset_specs  # noqa: E402
from gatewaysite.generations import bump  # noqa: E402

DATASETS = 25
# A realistic table: 12 columns of every type, a few with enums and ranges, one masked.
COLUMNS = [
    ("id", "integer", None, 1, 100000, "none"),
    ("order_date", "date", None, "2023-01-01", "2025-12-31", "none"),
    ("created_at", "datetime", None, "2023-01-01T00:00:00", "2025-12-31T23:59:59", "none"),
    ("product", "string", [f"Product {c}" for c in "ABCDEFGH"], None, None, "none"),
    ("category", "string", ["Hardware", "Software", "Services"], None, None, "none"),
    ("region", "string", ["EU", "US", "APAC", "LATAM"], None, None, "none"),
    ("channel", "string", ["online", "retail", "partner"], None, None, "none"),
    ("units", "integer", None, 1, 12, "none"),
    ("unit_price", "number", None, 8.5, 1200.0, "none"),
    ("revenue", "number", None, 8.5, 14400.0, "none"),
    ("paid", "boolean", [False, True], None, None, "none"),
    ("email", "string", None, None, None, "mask"),
]


def catalog_create() -> list[str]:
    """Register DATASETS datasets (metadata only: enough for the schema)."""
    slugs = []
    for number in range(1, DATASETS + 1):
        dataset = Dataset.objects.create(
            slug=f"sales_{number:02d}",
            title=f"Sales {number}",
            description="Orders with product, region, channel, units and revenue.",
            table="data",
            version=1,
            primary_key="id",
        )
        for position, (name, kind, enum, low, high, pii) in enumerate(COLUMNS):
            Column.objects.create(
                dataset=dataset,
                position=position,
                physical_name=name,
                name=name,
                type=kind,
                description=f"The {name}.",
                searchable=kind == "string",
                pii=pii,
                enum=enum,
                min_value=low,
                max_value=high,
            )
        slugs.append(dataset.slug)
    return slugs


def timed(action, repeat: int) -> list[float]:
    """Milliseconds of each run."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        runs.append((time.perf_counter() - start) * 1000)
    return runs


def report(label: str, runs: list[float]) -> None:
    print(
        f"{label:55s} median {statistics.median(runs):8.2f} ms   "
        f"min {min(runs):8.2f} ms   max {max(runs):8.2f} ms   ({len(runs)} runs)"
    )


def main() -> None:
    call_command("migrate", verbosity=0)
    slugs = catalog_create()
    specs = dataset_specs()
    server = "https://gateway.example.com"

    built = schema_build(specs=specs, server_url=server)
    print(
        f"{DATASETS} datasets x {len(COLUMNS)} columns: {built.operation_count} operations, "
        f"{len(built.json):,} bytes of JSON"
    )
    report(
        f"build, {DATASETS} datasets (no cache)",
        timed(lambda: schema_build(specs=specs, server_url=server), 10),
    )
    nine = [spec for spec in specs if spec.slug in slugs[:9]]
    built_nine = schema_build(specs=nine, server_url=server)
    print(f"9 datasets: {built_nine.operation_count} operations, {len(built_nine.json):,} bytes")
    report(
        "build, 9 datasets (no cache)",
        timed(lambda: schema_build(specs=nine, server_url=server), 10),
    )

    client = Client(HTTP_HOST="localhost")
    url = "/openapi.json?datasets=" + ",".join(slugs[:9])
    assert client.get(url, secure=True).status_code == 200  # fills the cache
    report(
        "GET /openapi.json?datasets=<9> (cached), via Django",
        timed(lambda: client.get(url, secure=True), 200),
    )
    report(
        "GET /openapi.json?datasets=<9> after a catalog change",
        timed(lambda: (bump("catalog"), client.get(url, secure=True)), 5),
    )


if __name__ == "__main__":
    main()
