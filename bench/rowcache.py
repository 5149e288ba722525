"""Benchmark: a row by key through the engine with and without the row store, and what the store
costs at import.

    .venv/bin/python bench/rowstore.py [--rows 1000000] [--lookups 20000]

Generates the demo sales CSV, imports it with datasets.services.dataset_import (as
`manage.py import_dataset --primary-key order_id --pii customer_email=mask` does) into a
temporary data directory, and prints:
  - the import: until the version is live (what the command waits for before the store), the row
    store's build after it, and DuckDB's own load of the same CSV (CREATE TABLE AS read_csv);
  - execute.run_row with a random key per call, in µs per call: through the row store, through
    DuckDB (the store ignored), and with a row filter (region=EU), with the ratio of each pair;
  - the floor: the store's SQLite lookup alone, and a rowid lookup on a plain SQLite table.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _setup_django(data_dir: Path) -> None:
    os.environ["GATEWAY_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatewaysite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _per_call_us(call, keys: list[int], repeat: int = 5) -> float:
    """Median over `repeat` rounds of the mean µs per call, a different key each call."""
    rounds = []
    for _ in range(repeat):
        started = time.perf_counter()
        for key in keys:
            call(key)
        rounds.append((time.perf_counter() - started) * 1e6 / len(keys))
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gateway-rowstore-") as directory:
        work = Path(directory)
        _setup_django(work / "data")
        import duckdb

        from datasets.demo import sales_csv_write
        from datasets.engine import execute, rowstore
        from datasets.engine.parse import parse_forced
        from datasets.selectors import dataset_spec
        from datasets.services import dataset_import

        csv_path = sales_csv_write(path=work / "sales.csv", rows=options.rows)
        print(f"{options.rows:,} rows, {csv_path.stat().st_size / 1e6:.0f} MB of CSV")

        started = time.perf_counter()
        connection = duckdb.connect(str(work / "own.duckdb"))
        connection.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [str(csv_path)])
        connection.close()
        own = time.perf_counter() - started

        started = time.perf_counter()
        dataset = dataset_import(
            path=csv_path, slug="sales", primary_key="order_id", pii={"customer_email": "mask"}
        )
        live = time.perf_counter() - started
        builders = [t for t in threading.enumerate() if t.name == "gateway-row-store"]
        for builder in builders:
            builder.join()
        built = time.perf_counter() - started
        store = Path(rowstore.store_path(str(dataset.file_path())))
        print("\nImport")
        print(f"  DuckDB's own load (CREATE TABLE AS read_csv)  {own:6.2f} s")
        print(
            f"  Gateway, until the version is live           {live:6.2f} s  "
            f"({live / own:.2f}x DuckDB's load; target at most 2x)"
        )
        print(
            f"  Gateway, row store built after it             {built:6.2f} s  "
            f"(+{built - live:.2f} s in the background; {built / own:.2f}x)"
        )
        print(
            f"  files: DuckDB {dataset.file_path().stat().st_size / 1e6:.0f} MB, "
            f"row store {store.stat().st_size / 1e6:.0f} MB"
        )

        spec = dataset_spec("sales")
        eu = parse_forced(spec, {"region": "EU"})
        rng = random.Random(17)
        keys = [rng.randint(1, options.rows) for _ in range(options.lookups)]
        few = keys[: max(1000, options.lookups // 10)]  # DuckDB is slower: fewer calls

        def row(key: int) -> dict:
            return execute.run_row(spec, str(key))

        def row_eu(key: int) -> dict | None:
            try:
                return execute.run_row(spec, str(key), eu)
            except execute.NotFound:
                return None

        for key in keys[:200]:  # warm: connections, compiled statements, pages
            row(key), row_eu(key)
        assert rowstore.fetch_row(spec, 1) is not None, "the row store does not answer"
        with_store = _per_call_us(row, keys)
        with_store_eu = _per_call_us(row_eu, keys)

        answers = {key: (row(key), row_eu(key)) for key in few[:500]}
        real = rowstore.fetch_row
        rowstore.fetch_row = lambda *args, **kwargs: None  # DuckDB answers every lookup
        try:
            for key in few[:200]:
                row(key), row_eu(key)
            assert answers == {key: (row(key), row_eu(key)) for key in answers}, "answers differ"
            without = _per_call_us(row, few)
            without_eu = _per_call_us(row_eu, few)
        finally:
            rowstore.fetch_row = real

        print("\nA row by key through the engine (execute.run_row, a random key each call)")
        print(f"  {'':24s} {'row store':>10s} {'DuckDB':>10s} {'ratio':>7s}")
        print(
            f"  {'no row filter':24s} {with_store:8.1f} µs {without:8.1f} µs {without / with_store:6.1f}x"
        )
        print(f"  {'row filter region=EU':24s} {with_store_eu:8.1f} µs {without_eu:8.1f} µs "
              f"{without_eu / with_store_eu:6.1f}x")  # fmt: skip
        print(f"  (the same answers for {len(answers)} keys, with and without the filter)")

        lite = sqlite3.connect(f"file:{store}?mode=ro&immutable=1", uri=True)
        store_sql = lite.execute
        plain = sqlite3.connect(str(work / "plain.sqlite3"))
        plain.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b, c, d, e, f, g, h, i, j)")
        plain.executemany(
            "INSERT INTO t VALUES (?, 'a', 'b', 'c', 'd', 'e', 1, 2.5, 3.5, 'j', 'k')",
            ((key,) for key in range(1, options.rows + 1)),
        )
        plain.commit()
        rowid = _per_call_us(
            lambda key: plain.execute("SELECT * FROM t WHERE id = ?", (key,)).fetchone(), keys
        )
        alone = _per_call_us(
            lambda key: store_sql("SELECT * FROM rows WHERE k = ?", (key,)).fetchone(), keys
        )
        print("\nThe floor")
        print(f"  the row store's SQLite lookup alone           {alone:6.1f} µs")
        print(f"  a rowid lookup on a plain SQLite table        {rowid:6.1f} µs")
        lite.close()
        plain.close()
        rowstore.forget()


if __name__ == "__main__":
    main()
