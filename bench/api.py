"""Requests per second of the REST API on the 1,000,000-row demo, served as in production.

    .venv/bin/python bench/api.py [--rows 1000000] [--seconds 10] [--connections 8]

Gateway runs the production command (gunicorn, 2 sync workers, Redis cache) with keys, rate
limiting and usage recording on; wrk (apt-get install wrk) sends the calls from 127.0.0.1.
"""

from __future__ import annotations

import argparse

from server import bench_env, prepare, serve, temporary_directory, wrk

CALLS = {
    "filtered page with count": "/api/v1/datasets/sales/rows/?region=EU&revenue__gt=1000&ordering=-order_date",
    "row by key (random id)": "/api/v1/datasets/sales/rows/%d/",
    "Q2 aggregate": "/api/v1/datasets/sales/aggregate/?order_date__gte=2024-04-01&order_date__lte=2024-06-30&group_by=product&metrics=sum:revenue&ordering=-sum_revenue",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    with temporary_directory("gateway-bench-") as data_dir:
        env = bench_env(data_dir)
        key = prepare(env, rows=args.rows)
        with serve(env, key=key) as gateway:
            print(
                f"Gateway, production command, 2 workers, {args.rows:,} rows, {args.connections} connections, {args.seconds} s each"
            )
            for name, path in CALLS.items():
                result = wrk(
                    gateway.url + path,
                    headers={"Authorization": f"Bearer {key}"},
                    connections=args.connections,
                    seconds=args.seconds,
                    random_id_max=args.rows if "%d" in path else None,
                )
                print(f"  {name:26s} {result.line()}")


if __name__ == "__main__":
    main()
