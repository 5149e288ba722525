"""Benchmark: Gateway's import of a 1,000,000-row sales CSV against DuckDB's own copy of the file.

    .venv/bin/python bench/import_csv.py [--rows 1000000] [--runs 3]

Generates the demo sales CSV (about 100 MB) in a temporary directory, then times, each in a fresh
child process so that peak memory (ru_maxrss) is the import's own:
  - gateway: datasets.services.dataset_import (read, type, index the key, profile every column);
  - duckdb:  CREATE TABLE t AS SELECT * FROM read_csv(...) into a new DuckDB file.
Prints the median and best times, the ratio, and the peak resident memory of each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_django(data_dir: Path) -> None:
    os.environ["GATEWAY_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatewaysite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _maxrss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_gateway(csv_path: Path, data_dir: Path, slug: str) -> dict:
    _setup_django(data_dir)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from datasets.services import dataset_import

    before = _maxrss_mb()
    started = time.perf_counter()
    dataset = dataset_import(path=csv_path, slug=slug)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": dataset.row_count,
        "maxrss_mb": _maxrss_mb(),
        "baseline_mb": before,
        "file_mb": dataset.file_path().stat().st_size / 1024 / 1024,
    }


def child_duckdb(csv_path: Path, target: Path) -> dict:
    import duckdb

    before = _maxrss_mb()
    started = time.perf_counter()
    connection = duckdb.connect(str(target))
    connection.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [str(csv_path)])
    connection.close()
    seconds = time.perf_counter() - started
    rows = duckdb.connect(str(target), read_only=True).execute("SELECT count(*) FROM t").fetchone()
    return {
        "seconds": seconds,
        "rows": rows[0],
        "maxrss_mb": _maxrss_mb(),
        "baseline_mb": before,
        "file_mb": target.stat().st_size / 1024 / 1024,
    }


def _run_child(*args: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.child:
        kind, *rest = options.child
        if kind == "gateway":
            result = child_gateway(Path(rest[0]), Path(rest[1]), rest[2])
        else:
            result = child_duckdb(Path(rest[0]), Path(rest[1]))
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as directory:
        work = Path(directory)
        _setup_django(work / "generator")
        from datasets.demo import sales_csv_write

        csv_path = work / "sales.csv"
        started = time.perf_counter()
        sales_csv_write(path=csv_path, rows=options.rows)
        size_mb = csv_path.stat().st_size / 1024 / 1024
        print(
            f"Generated {options.rows:,} rows, {size_mb:.1f} MB of CSV in "
            f"{time.perf_counter() - started:.1f} s ({csv_path.name})."
        )

        gateway, duck = [], []
        for run in range(options.runs):
            # Alternate the two so that neither always gets the warmer page cache.
            duck.append(_run_child("duckdb", str(csv_path), str(work / f"duck{run}.duckdb")))
            gateway.append(_run_child("gateway", str(csv_path), str(work / f"gw{run}"), "sales"))
            print(
                f"  run {run + 1}: gateway {gateway[-1]['seconds']:.2f} s, "
                f"duckdb {duck[-1]['seconds']:.2f} s"
            )

    def summary(name: str, results: list[dict]) -> float:
        times = [result["seconds"] for result in results]
        median = statistics.median(times)
        last = results[-1]
        print(
            f"{name:8} median {median:.2f} s, best {min(times):.2f} s, rows {last['rows']:,}, "
            f"peak RSS {max(r['maxrss_mb'] for r in results):.0f} MB "
            f"(process before import {last['baseline_mb']:.0f} MB), file {last['file_mb']:.1f} MB"
        )
        return median

    print()
    gateway_median = summary("gateway", gateway)
    duck_median = summary("duckdb", duck)
    print(f"ratio    gateway / duckdb = {gateway_median / duck_median:.2f} (target: at most 2.0)")


if __name__ == "__main__":
    main()
