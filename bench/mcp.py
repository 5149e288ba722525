"""A tools/call `aggregate` on /mcp against the same call over REST, on one server.

Starts the production command (gunicorn, 2 sync workers, Redis from bench/server.py) on the demo
sales data, checks that both doors give the same groups, then sends the Q2 question through each
door in turn, one request at a time, and prints the median and 90th percentile of each and the
ratio of the medians (MCP / REST).

    .venv/bin/python bench/mcp.py [--rows 100000] [--requests 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server import bench_env, prepare, serve, temporary_directory  # noqa: E402

REST_PATH = (
    "/api/v1/datasets/sales/aggregate/?order_date__gte=2024-04-01&order_date__lte=2024-06-30"
    "&group_by=product&metrics=sum:revenue&ordering=-sum_revenue"
)
MCP_CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "aggregate",
        "arguments": {
            "dataset": "sales",
            "filters": {"order_date__gte": "2024-04-01", "order_date__lte": "2024-06-30"},
            "group_by": ["product"],
            "metrics": ["sum:revenue"],
            "ordering": ["-sum_revenue"],
        },
    },
}


def _request(port: int, method: str, path: str, headers: dict, body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def rest(port: int, key: str):
    """The Q2 aggregate over REST."""
    return _request(port, "GET", REST_PATH, {"Authorization": f"Bearer {key}"})


def mcp(port: int, key: str):
    """The Q2 aggregate as an MCP tools/call."""
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    return _request(port, "POST", "/mcp", headers, json.dumps(MCP_CALL).encode())


def _timed(call, port: int, key: str) -> float:
    began = time.perf_counter()
    status, _ = call(port, key)
    elapsed = (time.perf_counter() - began) * 1000
    if status != 200:
        raise SystemExit(f"{call.__name__} answered {status}")
    return elapsed


def _line(name: str, times: list[float]) -> str:
    p90 = statistics.quantiles(times, n=10)[-1]
    return f"{name:5} median {statistics.median(times):7.2f} ms   p90 {p90:7.2f} ms   ({len(times)} calls)"


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
            _, by_rest = rest(port, key)
            _, by_mcp = mcp(port, key)
            if by_mcp["result"]["structuredContent"]["results"] != by_rest["results"]:
                raise SystemExit("MCP and REST disagree on the Q2 groups")
            for _ in range(20):  # warm-up: both workers, both paths
                rest(port, key)
                mcp(port, key)
            rest_times, mcp_times = [], []
            for _ in range(options.requests):
                rest_times.append(_timed(rest, port, key))
                mcp_times.append(_timed(mcp, port, key))
    print(f"Q2 aggregate on {options.rows} demo rows, one request at a time, gunicorn 2 workers")
    print(_line("REST", rest_times))
    print(_line("MCP", mcp_times))
    ratio = statistics.median(mcp_times) / statistics.median(rest_times)
    print(f"ratio MCP / REST (medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
