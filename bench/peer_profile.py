"""Where one Gateway request's time goes, in process: Redis round trips, the dataset query, the rest.

    .venv/bin/python bench/peer_profile.py [--rows 1000000] [--requests 500]

The peer benchmark's three calls, sent with Django's test client (no network, no gunicorn, one
process, nothing else competing for the CPU) to the demo dataset, with keys, rate limiting and
usage recording on and a Redis of its own as the cache (Django's database: SQLite). Every Redis
command and every dataset query is timed, and the time per request is split into: Redis round
trips, the dataset query (execute.fetch: the statement's SQL, then the answer kept for it or
DuckDB's), and everything else (Django, DRF, authentication, JSON). The row by key takes a
random id per request, so most of its lookups are DuckDB's; the page and Q2 repeat.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

BENCH = str(Path(__file__).resolve().parent)
# The helpers beside this script are imported by name, but after the installed packages: bench/mcp.py
# must not hide the MCP SDK that the server imports.
sys.path[:] = [path for path in sys.path if path != BENCH] + [BENCH]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fault_services import redis_server  # noqa: E402
from peer import CALLS  # noqa: E402
from server import temporary_directory  # noqa: E402


class Stopwatch:
    """Time and count the calls of the functions it wraps; a wrapped call inside another is part
    of the outer one."""

    def __init__(self) -> None:
        self.calls, self.seconds, self.depth = 0, 0.0, 0

    def wrap(self, function):
        def timed(*args, **kwargs):
            if self.depth:
                return function(*args, **kwargs)
            self.depth += 1
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1
                self.depth -= 1

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with temporary_directory("gateway-profile-") as work, redis_server(work / "redis") as redis:
        os.environ.update(
            GATEWAY_DATA_DIR=str(work / "gateway"),
            REDIS_URL=redis.url,
            DJANGO_SETTINGS_MODULE="gatewaysite.settings",
        )
        os.environ.pop("DATABASE_URL", None)
        import django

        django.setup()
        import redis as redis_py
        from django.core.management import call_command
        from django.test import Client

        from datasets.demo import demo_load
        from datasets.engine import execute
        from keys.services import api_key_issue
        from keys.usage import usage_flush

        call_command("migrate", verbosity=0)
        demo_load(rows=args.rows)
        key = api_key_issue(name="profile", all_datasets=True, rate="100000000/m").raw_key
        client = Client(headers={"Authorization": f"Bearer {key}"}, HTTP_HOST="127.0.0.1")

        redis_watch, query_watch = Stopwatch(), Stopwatch()
        redis_py.Redis.execute_command = redis_watch.wrap(redis_py.Redis.execute_command)
        redis_py.client.Pipeline.execute = redis_watch.wrap(redis_py.client.Pipeline.execute)
        execute.fetch = query_watch.wrap(execute.fetch)
        print(
            f"In process, {args.rows:,} rows, {args.requests} requests per call, Redis on 127.0.0.1 (own server)"
        )
        print(
            f"  {'call':26s} {'ms/request':>10s} {'Redis ms':>9s} {'trips':>9s} {'query ms':>9s} {'rest ms':>8s}"
        )
        for name, path, _, _ in CALLS:
            for _ in range(20):  # warm: key table, compiled statements, DuckDB pages
                assert (
                    client.get(
                        path % random.randint(1, args.rows) if "%d" in path else path
                    ).status_code
                    == 200
                )
            redis_watch.__init__()
            query_watch.__init__()
            started = time.perf_counter()
            for _ in range(args.requests):
                response = client.get(path % random.randint(1, args.rows) if "%d" in path else path)
                assert response.status_code == 200, response.content
            total = (time.perf_counter() - started) * 1000 / args.requests
            redis_ms = redis_watch.seconds * 1000 / args.requests
            query_ms = query_watch.seconds * 1000 / args.requests
            print(f"  {name:26s} {total:10.2f} {redis_ms:9.2f} {redis_watch.calls / args.requests:9.1f} "
                  f"{query_ms:9.2f} {total - redis_ms - query_ms:8.2f}")  # fmt: skip
        usage_flush()  # the records still waiting in this process, while its Redis runs


if __name__ == "__main__":
    main()
