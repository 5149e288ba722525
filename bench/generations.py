"""Per-request cost of the change check: reading every cached part's generation once.

On the embedded default the generations are small files in the data directory; with Redis
they are one GET of several keys. The figure is what a request pays before it may trust its
process's copies of the catalog and the key table.

Run: .venv/bin/python bench/generations.py  (Redis on 127.0.0.1:6379 for the second line)
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
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatewaysite.settings")

import django  # noqa: E402

django.setup()

from django.test import override_settings  # noqa: E402

from gatewaysite import generations  # noqa: E402
from gatewaysite.generations import ProcessCache, generation  # noqa: E402

REQUESTS = 20_000
REDIS = os.environ.get("GATEWAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")

# The parts the request path keeps: registered as the application's selectors do.
_catalog = ProcessCache("catalog")
_keys = ProcessCache("keys")


def one_request() -> None:
    """What every API request adds: the key table and the catalog checked, then a dataset."""
    generations._request_started()
    _keys.get("all", dict)
    _catalog.get(("all",), list)
    _catalog.get(("dataset", "sales"), lambda: None)
    generations._request_finished()


def per_request_us(repeat: int = 5) -> float:
    """Median over `repeat` runs of the microseconds one request spends checking generations."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(REQUESTS):
            one_request()
        runs.append((time.perf_counter() - start) / REQUESTS * 1e6)
    return statistics.median(runs)


def main() -> None:
    generation("catalog")  # creates the files
    embedded = per_request_us()
    print(f"embedded default (files in the data directory): {embedded:7.1f} µs per request")
    redis_cache = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS,
            "KEY_PREFIX": "gateway-bench",
        }
    }
    try:
        with override_settings(CACHES=redis_cache):
            from django.core.cache import caches

            caches["default"].get("probe")
            generations.process_caches_reset()
            redis = per_request_us()
            print(f"production (Redis, one round trip):            {redis:7.1f} µs per request")
    except Exception as error:  # Redis not running: the first figure still stands
        print(f"production (Redis): not measured ({error.__class__.__name__}: {error})")


if __name__ == "__main__":
    main()
