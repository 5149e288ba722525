"""Cost as work grows: the import, a page with its count, a row by key and the Q2 aggregate at
1,000,000 and 10,000,000 rows, at 1, 8 and 32 connections.

    .venv/bin/python bench/scale.py [--rows 1000000,10000000] [--connections 1,8,32] [--seconds 5]

For each size, the demo sales CSV (datasets.demo.sales_csv_write) is generated into a temporary
directory (on disk only for the run) and imported twice:
  - DuckDB's own load (CREATE TABLE AS read_csv, in this process, one file, then removed);
  - manage.py import_dataset --primary-key order_id --pii customer_email=mask, timed until the
    command exits (the dataset is live then).
Then the production command (gunicorn, 2 sync workers, keys, rate limiting and usage recording
on, PostgreSQL and Redis servers of the bench's own) serves it twice, and wrk (from 127.0.0.1)
sends each call for --seconds at each connection count after a 1 s warm-up:
  - with GATEWAY_RESULT_CACHE_MB=0: every call runs its query, the engine's own cost;
  - with the default: the page and Q2 (the same URL each request) come from the answers kept per
    version after the first; a row by key takes a random id per request, so DuckDB answers most.
The calls are bench/peer.py's. The table at the end gives requests per second, and for each call
the ratio of the largest size's rate to the smallest's at 8 connections (a row by key should cost
the same at 10x the rows; a scan at most 10x).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

BENCH = str(Path(__file__).resolve().parent)
# The helpers beside this script are imported by name, but after the installed packages: bench/mcp.py
# must not hide the MCP SDK that the server imports.
sys.path[:] = [path for path in sys.path if path != BENCH] + [BENCH]

import duckdb  # noqa: E402
from fault_services import (  # noqa: E402
    gateway_serve,
    gateway_setup,
    log_problems,
    manage,
    postgres_server,
    redis_server,
)
from peer import CALLS, _timed  # noqa: E402
from peer_wrk import wrk_one  # noqa: E402
from server import ROOT, bench_env, temporary_directory  # noqa: E402

CACHES = (("off", "0"), ("on", None))  # label, GATEWAY_RESULT_CACHE_MB (None: the default)


def _import(env: dict, work: Path, rows: int) -> tuple[str, float, float]:
    """Generate `rows` rows, load them with DuckDB and with Gateway; the slug and both times."""
    csv_path = work / f"sales-{rows}.csv"
    manage(
        env,
        script=f"from datasets.demo import sales_csv_write; sales_csv_write(path={str(csv_path)!r}, rows={rows})",
    )
    own_path = work / "own.duckdb"
    started = time.perf_counter()
    connection = duckdb.connect(str(own_path))
    connection.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [str(csv_path)])
    connection.close()
    own = time.perf_counter() - started
    own_path.unlink()
    slug = f"sales_{rows}"
    gateway = _timed(
        [sys.executable, "manage.py", "import_dataset", str(csv_path), "--slug", slug,
         "--primary-key", "order_id", "--pii", "customer_email=mask", "-v", "0"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    print(
        f"{rows:,} rows ({csv_path.stat().st_size / 1e6:,.0f} MB of CSV): DuckDB's load {own:.2f} s, "
        f"import_dataset {gateway:.2f} s ({gateway / own:.2f}x; target at most 1.5x + 2 s = "
        f"{1.5 * own + 2:.2f} s: {'meets' if gateway <= 1.5 * own + 2 else 'MISSES'})",
        flush=True,
    )
    csv_path.unlink()
    return slug, own, gateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated row counts")
    parser.add_argument("--connections", default="1,8,32", help="comma-separated connection counts")
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(rows) for rows in args.rows.split(",")]
    connection_counts = [int(count) for count in args.connections.split(",")]
    print(
        f"Scale benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results: dict[tuple[int, str, str, int], float] = {}
    imports: dict[int, tuple[float, float]] = {}
    with (
        temporary_directory("gateway-scale-") as work,
        redis_server(work / "redis") as redis,
        postgres_server() as postgres,
    ):
        postgres.sql("postgres", "CREATE DATABASE gateway")
        env = bench_env(work / "gateway", database_url=postgres.url("gateway"))
        env["REDIS_URL"] = redis.url
        gateway_setup(env)
        key = (
            manage(env, "issue_key", "bench", "--all", "--rate", "100000000/m")
            .strip()
            .splitlines()[-1]
        )
        auth = {"Authorization": f"Bearer {key}"}
        log = work / "gateway.log"
        for rows in sizes:
            slug, own, gateway = _import(env, work, rows)
            imports[rows] = (own, gateway)
            for cache, megabytes in CACHES:
                server_env = dict(env)
                if megabytes is not None:
                    server_env["GATEWAY_RESULT_CACHE_MB"] = megabytes
                with gateway_serve(server_env, key=key, log=log, workers=2) as server:
                    for name, path, _, _ in CALLS:
                        url = server.url + path.replace("/sales/", f"/{slug}/")
                        wrk_one(url, headers=auth, connections=1, seconds=1, random_max=rows)
                        for connections in connection_counts:
                            mix = wrk_one(
                                url,
                                headers=auth,
                                connections=connections,
                                seconds=args.seconds,
                                random_max=rows,
                            )
                            result = mix.result
                            if result.errors or set(mix.statuses) - {200}:
                                raise SystemExit(
                                    f"{name}: {dict(mix.statuses)}, {result.errors} errors"
                                )
                            results[(rows, cache, name, connections)] = result.requests_per_second
                            print(
                                f"  {rows:>10,} rows, answers kept {cache:3s}, {name:26s} "
                                f"{connections:2d} conn {result.requests_per_second:8.1f} req/s  "
                                f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms",
                                flush=True,
                            )
        problems = log_problems(log)

    print(f"\nSummary (requests per second, {args.seconds} s per run, 2 workers)")
    header = "  ".join(
        f"{f'{rows:,} rows, {c} conn':>22s}" for rows in sizes for c in connection_counts
    )
    print(f"  {'call':26s} {'kept':4s}  {header}")
    for name, _, _, _ in CALLS:
        for cache, _ in CACHES:
            figures = "  ".join(
                f"{results[(rows, cache, name, c)]:22.1f}"
                for rows in sizes
                for c in connection_counts
            )
            print(f"  {name:26s} {cache:4s}  {figures}")
    if len(sizes) > 1 and 8 in connection_counts:
        small, large = sizes[0], sizes[-1]
        print(
            f"\nCost at {large // small}x the rows (8 connections; rate at {small:,} / rate at {large:,})"
        )
        for name, _, _, _ in CALLS:
            for cache, _ in CACHES:
                ratio = results[(small, cache, name, 8)] / results[(large, cache, name, 8)]
                print(f"  {name:26s} answers kept {cache:3s}  {ratio:6.2f}x")
    for rows, (own, gateway) in imports.items():
        print(
            f"  import of {rows:,} rows: {gateway:.2f} s against DuckDB's {own:.2f} s ({gateway / own:.2f}x)"
        )
    print(f"  Gateway log: {len(problems)} server errors or worker deaths")


if __name__ == "__main__":
    main()
