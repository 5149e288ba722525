"""A ClickHouse dataset through Gateway against the same query sent straight to ClickHouse.

    .venv/bin/python bench/clickhouse.py [--rows 1000000] [--requests 200]

Writes the demo sales rows (datasets.demo.sales_rows) to a MergeTree table in the ClickHouse on
127.0.0.1:9000 (a table of its own, dropped at the end), registers it as a source and a dataset
in a Gateway of its own (SQLite database, local-memory cache, a temporary data directory), then
times, in one process with Django's test client and one thread:
  - the Q2 aggregate (sum of revenue per product over one quarter) and a filtered page with its
    count, through the API with a key;
  - the same SQL straight to ClickHouse with clickhouse-driver (the count and the page as the two
    queries Gateway sends);
  - a trivial API request (the dataset list), the cost of the request around any query.
The table is merged into its final parts before timing, and the API call, the raw query and the
trivial request are called in turn, so that none of them runs on a busier machine (a request
right after a ClickHouse query costs more than one after another request: the server's threads
share the cores).
Printed: milliseconds per call (median), and (API - trivial) / raw, the API's cost beyond a
trivial request against the raw query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = str(Path(__file__).resolve().parent)
# bench/mcp.py must not hide the MCP SDK that the server imports.
sys.path[:] = [path for path in sys.path if path != BENCH]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TABLE = f"gw_bench_sales_{os.getpid()}"
Q2 = (
    "/api/v1/datasets/sales/aggregate/?order_date__gte=2024-04-01&order_date__lte=2024-06-30"
    "&group_by=product&metrics=sum:revenue&ordering=-sum_revenue"
)
PAGE = "/api/v1/datasets/sales/rows/?region=EU&revenue__gt=1000&ordering=-order_date&limit=50"
RAW_Q2 = (
    f"SELECT product, sum(revenue) AS s FROM {TABLE} WHERE order_date >= '2024-04-01' AND "
    "order_date <= '2024-06-30' GROUP BY product ORDER BY s DESC LIMIT 1000"
)
RAW_PAGE = [
    f"SELECT * FROM {TABLE} WHERE region = 'EU' AND revenue > 1000 ORDER BY order_date DESC "
    "LIMIT 50",
    f"SELECT count() FROM {TABLE} WHERE region = 'EU' AND revenue > 1000",
]


def _median_ms(*calls, requests: int) -> list[float]:
    """The median milliseconds of each call, the calls taken in turn so that both sides see the
    same machine."""
    times: list[list[float]] = [[] for _ in calls]
    for call in calls:
        call()  # warm
    for _ in range(requests):
        for call, spent in zip(calls, times, strict=True):
            started = time.perf_counter()
            call()
            spent.append((time.perf_counter() - started) * 1000)
    return [statistics.median(spent) for spent in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    data = tempfile.mkdtemp(prefix="gateway-ch-bench-")
    os.environ.update(GATEWAY_DATA_DIR=data, DJANGO_SETTINGS_MODULE="gatewaysite.settings")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from clickhouse_driver import Client
    from django.core.management import call_command
    from django.test import Client as HttpClient

    from datasets.demo import sales_rows
    from keys.services import api_key_issue

    call_command("migrate", verbosity=0)
    clickhouse = Client("127.0.0.1", port=9000)
    clickhouse.execute(f"DROP TABLE IF EXISTS {TABLE}")
    clickhouse.execute(
        f"CREATE TABLE {TABLE} (order_id Int64, order_date Date, product String, "
        "category String, region String, channel String, units Int64, unit_price Float64, "
        "revenue Float64, customer_name String, customer_email String) "
        "ENGINE = MergeTree() ORDER BY order_id"
    )
    try:
        started = time.monotonic()
        batch = []
        for row in sales_rows(args.rows):
            number, day, *text, units, unit_price, revenue, name, email = row
            batch.append(
                (number, dt.date.fromisoformat(day), *text, units, float(unit_price),
                 float(revenue), name, email)
            )  # fmt: skip
            if len(batch) == 100_000:
                clickhouse.execute(f"INSERT INTO {TABLE} VALUES", batch)
                batch = []
        if batch:
            clickhouse.execute(f"INSERT INTO {TABLE} VALUES", batch)
        # Merged into its final parts first: background merges would slow whichever side runs
        # while they happen.
        clickhouse.execute(f"OPTIMIZE TABLE {TABLE} FINAL")
        print(f"{args.rows} rows written to ClickHouse in {time.monotonic() - started:.1f} s")
        call_command("add_source", "warehouse", "clickhouse://default@127.0.0.1:9000/default",
                     stdout=io.StringIO())  # fmt: skip
        call_command("add_dataset", "--source", "warehouse", "--table", TABLE, "--slug", "sales",
                     "--primary-key", "order_id", "--pii", "customer_email=mask",
                     stdout=io.StringIO())  # fmt: skip
        key = api_key_issue(name="bench", all_datasets=True, rate="100000000/m").raw_key
        http = HttpClient(headers={"Authorization": f"Bearer {key}"})

        def api(path):
            def call():
                response = http.get(path, HTTP_HOST="127.0.0.1")
                assert response.status_code == 200, response.content[:300]

            return call

        def raw(*queries):
            def call():
                for query in queries:
                    clickhouse.execute(query)

            return call

        for name, path, queries in (
            ("Q2 aggregate", Q2, [RAW_Q2]),
            ("page with count", PAGE, RAW_PAGE),
        ):
            through, straight, trivial = _median_ms(
                api(path), raw(*queries), api("/api/v1/datasets/"), requests=args.requests
            )
            ratio = (through - trivial) / straight
            print(f"{name:16} API {through:7.2f} ms   ClickHouse {straight:7.2f} ms   "
                  f"trivial request {trivial:5.2f} ms   (API - trivial) / raw = {ratio:.2f}")  # fmt: skip
    finally:
        clickhouse.execute(f"DROP TABLE IF EXISTS {TABLE}")
        clickhouse.disconnect()


if __name__ == "__main__":
    main()
