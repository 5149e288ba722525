"""The demo `sales` dataset: generated, deterministic orders from 2023 to 2025."""

from __future__ import annotations

import csv
import datetime as dt
import random
import tempfile
from pathlib import Path

from datasets.models import Column, Dataset
from datasets.services import dataset_import

SLUG = "sales"
SEED = 20230101
FIRST_DAY = dt.date(2023, 1, 1)
LAST_DAY = dt.date(2025, 12, 31)

# name, category, list price
PRODUCTS = (
    ("Product A", "Hardware", 249.00),
    ("Product B", "Hardware", 89.90),
    ("Product C", "Software", 499.00),
    ("Product D", "Software", 19.99),
    ("Product E", "Services", 1200.00),
    ("Product F", "Services", 150.00),
    ("Product G", "Accessories", 9.95),
    ("Product H", "Accessories", 34.50),
)
PRODUCT_WEIGHTS = (14, 18, 8, 20, 4, 10, 16, 10)
REGIONS = ("EU", "US", "APAC", "LATAM")
REGION_WEIGHTS = (35, 35, 20, 10)
CHANNELS = ("online", "retail", "partner")
CHANNEL_WEIGHTS = (50, 30, 20)
DISCOUNTS = (0.0, 0.0, 0.0, 0.05, 0.10, 0.15)
FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kemi", "Liam", "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara",
)  # fmt: skip
LAST_NAMES = (
    "Almeida", "Brown", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jansen", "Kowalski", "Lopez", "Meyer", "Nakamura", "Okafor", "Patel", "Rossi", "Silva",
    "Tanaka", "Weber",
)  # fmt: skip
CUSTOMERS = 5000

HEADER = (
    "order_id",
    "order_date",
    "product",
    "category",
    "region",
    "channel",
    "units",
    "unit_price",
    "revenue",
    "customer_name",
    "customer_email",
)
TITLE = "Sales orders (demo)"
DESCRIPTION = (
    "Demo sales: one row per order from 2023-01-01 to 2025-12-31 with product, category, region, "
    "sales channel, units, unit price and revenue. Customer e-mails are masked. Sum revenue by "
    "product, region or order_date quarter to answer sales questions."
)
COLUMN_DESCRIPTIONS = {
    "order_id": "Order number, unique per row.",
    "order_date": "Day the order was placed (2023-01-01 to 2025-12-31).",
    "product": "Product sold.",
    "category": "Product category.",
    "region": "Sales region of the customer.",
    "channel": "Sales channel: online shop, retail store or partner reseller.",
    "units": "Units ordered.",
    "unit_price": "Price per unit after discount.",
    "revenue": "Order revenue: units x unit_price.",
    "customer_name": "Customer's name.",
    "customer_email": "Customer's e-mail address (masked).",
}
COLUMN_UNITS = {"unit_price": "USD", "revenue": "USD"}
# Names repeat across customers: the e-mail is what tells one customer from another.
COLUMN_IDENTIFIES = {"order_id": "one order", "customer_email": "one customer"}


def _customer(number: int) -> tuple[str, str]:
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    last = LAST_NAMES[(number // len(FIRST_NAMES)) % len(LAST_NAMES)]
    return f"{first} {last}", f"{first.lower()}.{last.lower()}{number}@example.com"


def sales_rows(rows: int, *, seed: int = SEED):
    """Yield `rows` demo orders (tuples in HEADER order), the same ones for the same seed."""
    rng = random.Random(seed)
    days = (LAST_DAY - FIRST_DAY).days + 1
    customers = [_customer(number) for number in range(CUSTOMERS)]
    for index in range(rows):
        # Orders are numbered in date order, spread evenly from the first day to the last.
        day = FIRST_DAY + dt.timedelta(days=index * (days - 1) // max(rows - 1, 1))
        name, category, list_price = rng.choices(PRODUCTS, PRODUCT_WEIGHTS)[0]
        units = rng.randint(1, 12)
        unit_price = round(list_price * (1 - rng.choice(DISCOUNTS)), 2)
        customer_name, customer_email = customers[rng.randrange(CUSTOMERS)]
        yield (
            index + 1,
            day.isoformat(),
            name,
            category,
            rng.choices(REGIONS, REGION_WEIGHTS)[0],
            rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0],
            units,
            f"{unit_price:.2f}",
            f"{units * unit_price:.2f}",
            customer_name,
            customer_email,
        )


def sales_csv_write(*, path: Path, rows: int, seed: int = SEED) -> Path:
    """Write `rows` demo orders to a CSV file, streamed row by row."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(sales_rows(rows, seed=seed))
    return path


def demo_loaded(rows: int) -> Dataset | None:
    """The demo dataset when it is already loaded with `rows` rows and its file is in place."""
    dataset = Dataset.objects.filter(slug=SLUG).first()
    if (
        dataset is not None
        and dataset.is_upload
        and dataset.version > 0
        and dataset.row_count == rows
        and dataset.file_path().is_file()
    ):
        return dataset
    return None


def demo_load(*, rows: int = 100_000) -> tuple[Dataset, bool]:
    """Import the demo `sales` dataset (skipped when already loaded); returns it and whether loaded."""
    dataset = demo_loaded(rows)
    if dataset is not None:
        return dataset, False
    existing = Dataset.objects.filter(slug=SLUG).exists()
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as directory:
        path = sales_csv_write(path=Path(directory) / "sales.csv", rows=rows)
        dataset = dataset_import(
            path=path,
            slug=SLUG,
            title=TITLE,
            description=DESCRIPTION,
            primary_key="order_id",
            pii={"customer_email": "mask"},
            replace=existing,
        )
    for physical_name, description in COLUMN_DESCRIPTIONS.items():
        Column.objects.filter(dataset=dataset, physical_name=physical_name).update(
            description=description,
            unit=COLUMN_UNITS.get(physical_name, ""),
            identifies=COLUMN_IDENTIFIES.get(physical_name, ""),
        )
    return dataset, True
