"""Per-request overhead of key authentication, rate limiting and usage recording.

Runs in process (Django's test client, no network): the same call, GET a row by key, with each
piece switched on in turn, and prints requests per second, the cost of each piece, and the round
trips to Redis and the time spent in them per request.

    .venv/bin/python -m bench.keys_overhead                                      # local memory cache
    REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python -m bench.keys_overhead   # Redis

The database is always a fresh SQLite file in a temporary directory.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA_DIR = tempfile.mkdtemp(prefix="gw-bench-keys-")
os.environ["GATEWAY_DATA_DIR"] = DATA_DIR
os.environ.pop("DATABASE_URL", None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatewaysite.settings")

import django  # noqa: E402

django.setup()

import duckdb  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
URLS = {
    "row by key": "/api/v1/datasets/bench/rows/500/",
    "describe dataset": "/api/v1/datasets/bench/",
}
URL = URLS["row by key"]


def _dataset() -> None:
    from datasets.models import Column, Dataset

    dataset = Dataset.objects.create(
        slug="bench", title="Bench", table="data", version=1, primary_key="order_id"
    )
    dataset.directory.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(dataset.file_path()))
    connection.execute(
        "CREATE TABLE data AS SELECT i AS order_id, 'EU' AS region, i * 1.5 AS revenue "
        "FROM range(1, 10001) t(i)"
    )
    connection.execute("ALTER TABLE data ADD PRIMARY KEY (order_id)")
    connection.close()
    for position, (name, type_) in enumerate(
        [("order_id", "integer"), ("region", "string"), ("revenue", "number")]
    ):
        Column.objects.create(
            dataset=dataset, position=position, physical_name=name, name=name, type=type_
        )


class RedisWatch:
    """Round trips to Redis (a command alone, or a pipeline) and the time spent in them."""

    def __init__(self) -> None:
        self.trips, self.seconds = 0, 0.0

    def install(self) -> None:
        import redis

        for owner, name in ((redis.Redis, "execute_command"), (redis.client.Pipeline, "execute")):
            setattr(owner, name, self._timed(getattr(owner, name)))

    def _timed(self, function):
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began
                self.trips += 1

        return timed


WATCH = RedisWatch()
# The last run of each configuration: round trips and Redis milliseconds per request.
IN_REDIS: dict[str, tuple[float, float]] = {}


def _rate(client: Client, url: str) -> float:
    """Requests per second of one run."""
    response = client.get(url)
    assert response.status_code == 200, response.content
    WATCH.__init__()
    began = time.perf_counter()
    for _ in range(REQUESTS):
        client.get(url)
    elapsed = time.perf_counter() - began
    IN_REDIS[url] = (WATCH.trips / REQUESTS, WATCH.seconds * 1000 / REQUESTS)
    return REQUESTS / elapsed


def _configuration(*, auth: bool, limits: bool, usage: bool, raw_key: str, url: str) -> float:
    from rest_framework.permissions import AllowAny

    from access import api
    from datasets.policy import AccessPolicy

    everything = AccessPolicy(
        principal="bench", all_datasets=True, dataset_ids=frozenset(), row_filters={}
    )
    middleware = [
        m for m in settings.MIDDLEWARE if usage or m != "access.middleware.UsageMiddleware"
    ]
    with ExitStack() as stack:
        stack.enter_context(override_settings(MIDDLEWARE=middleware))
        if not auth:
            # DRF binds the classes when the view classes are defined: switch them on the views.
            stack.enter_context(mock.patch.object(api.DatasetView, "authentication_classes", []))
            stack.enter_context(
                mock.patch.object(api.DatasetView, "permission_classes", [AllowAny])
            )
            stack.enter_context(mock.patch.object(api, "request_policy", lambda r: everything))
        if not limits:
            stack.enter_context(mock.patch.object(api.DatasetView, "throttle_classes", []))
        headers = {"Authorization": f"Bearer {raw_key}"} if auth else {}
        client = Client(headers=headers, HTTP_HOST="127.0.0.1")
        return _rate(client, url)


def _micro(label: str, call, count: int = 20000) -> float:
    call()
    samples = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        for _ in range(count):
            call()
        samples.append((time.perf_counter() - began) / count * 1e6)
    value = min(samples)
    print(f"  {label:<46} {value:8.1f} µs")
    return value


def main() -> None:
    call_command("migrate", verbosity=0)
    cache.clear()
    _dataset()
    from keys.services import api_key_issue

    # A rate far above what the loop sends: the limiter counts but never refuses.
    raw_key = api_key_issue(
        name="bench", all_datasets=True, rate="100000000/d", quota_per_day=100000000
    ).raw_key
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    WATCH.install()
    print(f"Cache: {backend}; database: SQLite; {REQUESTS} requests a run, best of {ROUNDS} runs")

    steps = [
        ("no key pieces (baseline)", dict(auth=False, limits=False, usage=False)),
        ("+ authentication and scope", dict(auth=True, limits=False, usage=False)),
        ("+ rate limit and daily quota", dict(auth=True, limits=True, usage=False)),
        ("+ usage recording (everything)", dict(auth=True, limits=True, usage=True)),
    ]
    for name, url in URLS.items():
        print(f"\nGET {url} ({name})")
        best = {label: 0.0 for label, _ in steps}
        # Runs interleaved, best kept: a busy machine slows every configuration alike.
        in_redis = {}
        for _ in range(ROUNDS):
            for label, options in steps:
                best[label] = max(best[label], _configuration(raw_key=raw_key, url=url, **options))
                in_redis[label] = IN_REDIS[url]
        previous = None
        for label, _ in steps:
            per_request = 1e6 / best[label]
            added = "" if previous is None else f"{per_request - previous:+7.0f} µs"
            previous = per_request
            trips, redis_ms = in_redis[label]
            print(
                f"  {label:<34} {best[label]:8.0f} req/s  {per_request:7.0f} µs/request  "
                f"{added:>10}   Redis: {trips:.1f} round trips, {redis_ms * 1000:4.0f} µs"
            )
        baseline, full = 1e6 / best[steps[0][0]], 1e6 / best[steps[-1][0]]
        print(
            f"  all key pieces together: {full - baseline:+.0f} µs per request "
            f"({(full / baseline - 1) * 100:.0f}% of the baseline request)"
        )
    print()

    print("Pieces alone (no HTTP, no view):")
    from django.test import RequestFactory

    from keys import usage
    from keys.authentication import key_authenticate
    from keys.ratelimit import budget_refusal

    key = key_authenticate(raw_key)
    request = RequestFactory().get(URL)
    _micro("key lookup + HMAC check (cached table)", lambda: key_authenticate(raw_key))
    # The throttle's spend: one round trip (with Redis), or django-ratelimit and the quota
    # counter in local memory.
    _micro("rate limit and daily quota", lambda: budget_refusal(request, key.budget))
    entry = [time.time(), key.key_id, "bench", "row", 200, 1.0, 1]
    with mock.patch.object(usage, "usage_flush", lambda: 0):
        _micro("usage record (buffer append, no flush)", lambda: usage.record(entry))
    usage.discard_buffer()


if __name__ == "__main__":
    main()
