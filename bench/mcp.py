"""The doors against REST with a key, on one server: MCP tools/call `aggregate` and `get_row`,
and REST with an OAuth access token.

Starts the production command (gunicorn, 2 sync workers, Redis from bench/server.py) on the demo
sales data, checks that every door gives the same answer, then sends each call in turn, one
request at a time, and prints the median and 90th percentile of each and the ratio of the
medians against the same REST call with a key.

    .venv/bin/python bench/mcp.py [--rows 100000] [--requests 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server import ROOT, bench_env, prepare, serve, temporary_directory  # noqa: E402

Q2_PATH = (
    "/api/v1/datasets/sales/aggregate/?order_date__gte=2024-04-01&order_date__lte=2024-06-30"
    "&group_by=product&metrics=sum:revenue&ordering=-sum_revenue"
)
Q2_ARGUMENTS = {
    "dataset": "sales",
    "filters": {"order_date__gte": "2024-04-01", "order_date__lte": "2024-06-30"},
    "group_by": ["product"],
    "metrics": ["sum:revenue"],
    "ordering": ["-sum_revenue"],
}
ROW_PATH = "/api/v1/datasets/sales/rows/4242/"
ROW_ARGUMENTS = {"dataset": "sales", "key": "4242"}
# A person granted every dataset, signed in through a GPT Actions client, with a token for the
# REST API of this server (the token's audience is the server's own address).
TOKEN_SCRIPT = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from oauth2_provider.models import AccessToken, set_token_value
from accounts.models import AccessGrant
from accounts.services import gpt_actions_client_create
user = User.objects.create_user("bench-person")
AccessGrant.objects.create(user=user, all_datasets=True, rate="100000000/m")
application = gpt_actions_client_create(name="Bench GPT").application
token = AccessToken(user=user, application=application, scope="datasets",
                    expires=timezone.now() + timedelta(hours=2), resource=["{resource}"])
set_token_value(token, "gwo_bench-token-0123456789abcdef")
token.save()
print("gwo_bench-token-0123456789abcdef")
"""


def _request(port: int, method: str, path: str, headers: dict, body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def rest(port: int, key: str, path: str):
    """A GET of the REST API with a key or an access token."""
    return _request(port, "GET", path, {"Authorization": f"Bearer {key}"})


def mcp(port: int, key: str, tool: str, arguments: dict):
    """A tools/call on /mcp (initialize-era revision, as ChatGPT and Claude send it)."""
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    return _request(port, "POST", "/mcp", headers, json.dumps(body).encode())


def _timed(call) -> float:
    began = time.perf_counter()
    status, _ = call()
    elapsed = (time.perf_counter() - began) * 1000
    if status != 200:
        raise SystemExit(f"a benchmarked call answered {status}")
    return elapsed


def _line(name: str, times: list[float]) -> str:
    p90 = statistics.quantiles(times, n=10)[-1]
    return f"  {name:22} median {statistics.median(times):7.2f} ms   p90 {p90:7.2f} ms"


def _token(env: dict, port: int) -> str:
    script = TOKEN_SCRIPT.format(resource=f"http://127.0.0.1:{port}/api/v1/")
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    options = parser.parse_args()
    with temporary_directory("gw-bench-mcp-") as directory:
        env = bench_env(directory / "data")
        key = prepare(env, rows=options.rows)
        with serve(env, key=key, workers=2) as gateway:
            port = int(gateway.url.rsplit(":", 1)[1])
            token = _token(env, port)
            # Each comparison: name -> (call, the answer it must give).
            calls = {
                "Q2 aggregate": {
                    "REST, key": lambda: rest(port, key, Q2_PATH),
                    "MCP tools/call": lambda: mcp(port, key, "aggregate", Q2_ARGUMENTS),
                    "REST, OAuth token": lambda: rest(port, token, Q2_PATH),
                },
                "row by key": {
                    "REST, key": lambda: rest(port, key, ROW_PATH),
                    "MCP tools/call": lambda: mcp(port, key, "get_row", ROW_ARGUMENTS),
                    "REST, OAuth token": lambda: rest(port, token, ROW_PATH),
                },
            }
            for name, doors in calls.items():
                answers = [door()[1] for door in doors.values()]
                answers[1] = answers[1]["result"]["structuredContent"]
                if name == "Q2 aggregate":
                    answers = [answer["results"] for answer in answers]
                if any(answer != answers[0] for answer in answers):
                    raise SystemExit(f"the doors disagree on the {name}")
            times = {name: {door: [] for door in doors} for name, doors in calls.items()}
            for _ in range(20):  # warm-up: both workers, every path
                for doors in calls.values():
                    for door in doors.values():
                        door()
            for _ in range(options.requests):
                for name, doors in calls.items():
                    for door, call in doors.items():
                        times[name][door].append(_timed(call))
    print(f"{options.rows} demo rows, one request at a time, gunicorn 2 workers")
    for name, doors in times.items():
        print(f"{name} ({options.requests} calls each):")
        base = statistics.median(doors["REST, key"])
        for door, samples in doors.items():
            ratio = statistics.median(samples) / base
            print(_line(door, samples) + ("" if door == "REST, key" else f"   {ratio:.2f}x"))


if __name__ == "__main__":
    main()
