"""Benchmark: rows by key, a page with its count and the Q2 aggregate through the engine, first
from DuckDB, then from the answers kept per version. The import before it, against DuckDB's load.

    .venv/bin/python bench/result_cache.py [--rows 1000000] [--lookups 20000]

Generates the demo sales CSV, imports it with datasets.services.dataset_import (as
`manage.py import_dataset --primary-key order_id --pii customer_email=mask` does) into a
temporary data directory, and prints:
  - the import: DuckDB's own load of the same CSV (CREATE TABLE AS read_csv) against Gateway's
    import until it returns (the version is live then and nothing is built after it), the ratio,
    the version file's size and what else the import left in the dataset's folder (nothing);
  - execute.run_row with a random key per call (distinct keys), in µs per call: a first lookup of
    each key (the cache cleared before each round: DuckDB answers), the same keys again (the
    cache answers), with the ratio, without a row filter and with one (region=EU); the
    answers of both compared for a few hundred keys, with the DuckDB queries each pass issued;
  - the same for execute.run_rows (region=EU, revenue > 1000, newest first, 50 rows, with the
    count) and execute.run_aggregate (Q2: revenue per product from April to June), in ms;
  - where a repeated lookup's time goes, in µs per call: the cache's get, the statement built
    and its SQL found (compile_row, statement_sql), the rest of run_row (the key parsed, the
    record made), and DuckDB's query alone for comparison;
  - the cache's size after the repeated lookups of each (entries, MB, bytes per entry)
    against its limit, GATEWAY_RESULT_CACHE_MB.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = str(Path(__file__).resolve().parent)
# bench/mcp.py must not hide the MCP SDK that the server imports.
sys.path[:] = [path for path in sys.path if path != BENCH]
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


def _per_call_us(call, keys: list[int], repeat: int = 5, before=None) -> float:
    """Median over `repeat` rounds of the mean µs per call, a different key each call; `before`
    runs ahead of each round, untimed."""
    rounds = []
    for _ in range(repeat):
        if before is not None:
            before()
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

    with tempfile.TemporaryDirectory(prefix="gateway-result-cache-") as directory:
        work = Path(directory)
        _setup_django(work / "data")
        import duckdb
        from django.conf import settings
        from django.http import QueryDict

        from datasets.demo import sales_csv_write
        from datasets.engine import execute
        from datasets.engine.compile import compile_row
        from datasets.engine.execute import _DUCKDB_DIALECT as DUCKDB
        from datasets.engine.parse import parse_aggregate, parse_forced, parse_rows
        from datasets.engine.result_cache import result_cache
        from datasets.engine.sql import statement_sql
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
        imported = time.perf_counter() - started
        version = dataset.file_path()
        beside = sorted(entry.name for entry in version.parent.iterdir() if entry != version)
        print("\nImport")
        print(f"  DuckDB's own load (CREATE TABLE AS read_csv)  {own:6.2f} s")
        print(
            f"  Gateway, until dataset_import returns         {imported:6.2f} s  "
            f"({imported / own:.2f}x DuckDB's load; target at most 2x)"
        )
        print(
            f"  files: Gateway's version {version.stat().st_size / 1e6:.0f} MB "
            f"(DuckDB's own {(work / 'own.duckdb').stat().st_size / 1e6:.0f} MB); "
            f"beside it in the dataset's folder: {', '.join(beside) or 'nothing'}"
        )

        spec = dataset_spec("sales")
        eu = parse_forced(spec, {"region": "EU"})
        rng = random.Random(17)
        lookups = min(options.lookups, options.rows)
        keys = rng.sample(range(1, options.rows + 1), lookups)  # distinct: each a first lookup
        few = keys[: max(1000, lookups // 10)]  # DuckDB is slower: fewer calls

        queries = 0  # DuckDB queries: every call the cache did not answer
        run_duckdb = execute._run_duckdb

        def counted(*args, **kwargs):
            nonlocal queries
            queries += 1
            return run_duckdb(*args, **kwargs)

        execute._run_duckdb = counted

        def row(key: int) -> dict:
            return execute.run_row(spec, str(key))

        def row_eu(key: int) -> dict | None:
            try:
                return execute.run_row(spec, str(key), eu)
            except execute.NotFound:
                return None

        warm = rng.sample(range(1, options.rows + 1), 200)
        for key in warm:  # warm: connections, compiled statements, DuckDB pages
            row(key), row_eu(key)

        checked = few[:500]
        result_cache.clear()
        queries = 0
        answers = {key: (row(key), row_eu(key)) for key in checked}  # DuckDB's
        from_duckdb = queries
        queries = 0
        repeated = {key: (row(key), row_eu(key)) for key in checked}  # the cache's
        from_cache = queries
        assert answers == repeated, "the cache's answers differ from DuckDB's"
        assert from_duckdb == 2 * len(checked) and from_cache == 0, (from_duckdb, from_cache)
        found_eu = sum(eu_row is not None for _, eu_row in answers.values())

        figures = {}
        for label, call in (("no row filter", row), ("row filter region=EU", row_eu)):
            cold = _per_call_us(call, few, before=result_cache.clear)
            result_cache.clear()
            for key in keys:  # every key once: DuckDB, then kept
                call(key)
            queries = 0
            cached = _per_call_us(call, keys)
            assert queries == 0, f"{queries} lookups of {label} missed the cache"
            figures[label] = (cold, cached, len(result_cache), result_cache.size)

        print("\nA row by key through the engine (execute.run_row, a random key each call)")
        print(f"  {'':24s} {'first':>10s} {'repeated':>10s} {'ratio':>7s}")
        print(f"  {'':24s} {'(DuckDB)':>10s} {'(cache)':>10s}")
        for label, (cold, cached, _, _) in figures.items():
            print(f"  {label:24s} {cold:8.1f} µs {cached:8.1f} µs {cold / cached:6.1f}x")
        print(
            f"  ({len(few):,} keys per round first, {len(keys):,} repeated; the same answers from "
            f"both for {len(checked)} keys with and without the filter ({found_eu} in EU), "
            f"{from_duckdb} DuckDB queries the first time, {from_cache} the second)"
        )

        page = parse_rows(
            spec,
            QueryDict("region=EU&revenue__gt=1000&ordering=-order_date&limit=50"),
        )
        q2 = parse_aggregate(
            spec,
            QueryDict(
                "order_date__gte=2024-04-01&order_date__lte=2024-06-30&group_by=product"
                "&metrics=sum:revenue&ordering=-sum_revenue"
            ),
        )
        print("\nA page with its count and the Q2 aggregate (the same query each call)")
        print(f"  {'':24s} {'first':>10s} {'repeated':>10s} {'ratio':>7s}")
        for label, call in (
            ("page with count", lambda _: execute.run_rows(spec, page)),
            ("Q2 aggregate", lambda _: execute.run_aggregate(spec, q2)),
        ):
            result_cache.clear()
            fresh = call(0)
            assert call(0) == fresh, f"the cache's {label} differs from DuckDB's"
            cold = _per_call_us(call, [0], repeat=21, before=result_cache.clear) / 1000
            queries = 0
            cached = _per_call_us(call, [0] * 2000) / 1000
            assert queries == 0, f"{queries} calls of {label} missed the cache"
            print(f"  {label:24s} {cold:8.2f} ms {cached:8.3f} ms {cold / cached:6.0f}x")

        # The parts of a lookup without a filter, timed inside the same run_row calls, on keys
        # the cache holds (the last runs filled it with other lookups: fill it again).
        result_cache.clear()
        for key in keys:
            row(key)
        parts = {"get": 0.0, "statement": 0.0}

        def timed(name: str, function):
            def call(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    parts[name] += time.perf_counter() - started

            return call

        result_cache.get = timed("get", result_cache.get)  # this instance's, over the class's
        compile_and_sql = execute.compile_row, execute.statement_sql
        execute.compile_row = timed("statement", execute.compile_row)
        execute.statement_sql = timed("statement", execute.statement_sql)
        passes, started = 5, time.perf_counter()
        queries = 0
        try:
            for _ in range(passes):
                for key in keys:
                    row(key)
            elapsed = time.perf_counter() - started
        finally:
            del result_cache.get
            execute.compile_row, execute.statement_sql = compile_and_sql
            execute._run_duckdb = run_duckdb
        calls = passes * len(keys)
        whole = elapsed * 1e6 / calls
        assert queries == 0, f"{queries} lookups missed the cache"
        get = parts["get"] * 1e6 / calls
        statement = parts["statement"] * 1e6 / calls
        compiled = {key: statement_sql(DUCKDB, compile_row(spec, key, ())) for key in few}
        duck = _per_call_us(lambda key: run_duckdb(spec, *compiled[key]), few)
        print(
            f"\nWhere a repeated lookup's time goes (no row filter, µs per call, "
            f"{passes} passes over the {len(keys):,} keys)"
        )
        print(f"  the cache's get                               {get:7.1f} µs")
        print(f"  the statement built, its SQL found            {statement:7.1f} µs")
        print(f"  the rest of run_row (key parsed, record made) {whole - get - statement:7.1f} µs")
        print(f"  run_row in all, these calls                   {whole:7.1f} µs")
        print(f"  for comparison, DuckDB's query alone          {duck:7.1f} µs")

        limit = settings.GATEWAY_RESULT_CACHE_MB
        print(f"\nThe cache after the repeated lookups (limit GATEWAY_RESULT_CACHE_MB={limit})")
        for label, (_, _, entries, size) in figures.items():
            per_entry = size / max(entries, 1)
            print(
                f"  {label:24s} {entries:7,} entries, {size / 1e6:5.1f} MB counted, "
                f"{per_entry:4.0f} bytes each (the limit holds about "
                f"{limit * 1024 * 1024 / per_entry:,.0f})"
            )
        result_cache.clear()


if __name__ == "__main__":
    main()
