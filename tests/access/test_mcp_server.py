"""/mcp on a real server, driven by the official MCP Python SDK client over HTTP.

On the embedded default (runserver, SQLite, no shared cache) and in production (gunicorn with two
workers, PostgreSQL and Redis), in the initialize-era mode and in the 2026-07-28 mode: every
tool, a bad argument (the REST 400's code and message), scope and a row filter on every tool,
401 with WWW-Authenticate, a header that disagrees with the body, a bad Origin, and usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.servers import REDIS_URL, get, manage, postgres_database, running, server_environment
from tests.services import require

pytestmark = pytest.mark.system

MODES = ("legacy", "2026-07-28")
REGIONS = ("EU", "US", "APAC")
PRODUCTS = ("Product A", "Product B", "Product C")
Q2 = {
    "dataset": "sales",
    "filters": {"order_date__gte": "2024-04-01", "order_date__lte": "2024-06-30"},
    "group_by": ["product"],
    "metrics": ["sum:revenue"],
    "ordering": ["-sum_revenue"],
}


def _rows() -> list[dict]:
    start = dt.date(2024, 1, 1)
    return [
        {
            "order_id": n,
            "order_date": (start + dt.timedelta(days=n * 3)).isoformat(),
            "product": PRODUCTS[n % 3],
            "region": REGIONS[(n // 3) % 3],
            "revenue": float(n * 10 + 5),
            "note": f"order {n} for {REGIONS[(n // 3) % 3].lower()} desk",
        }
        for n in range(1, 91)
    ]


ROWS = _rows()


def _csv(path) -> str:
    lines = [",".join(ROWS[0])] + [",".join(str(value) for value in row.values()) for row in ROWS]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@contextlib.contextmanager
def _gateway(kind: str, directory):
    with contextlib.ExitStack() as stack:
        if kind == "production":
            require("postgres")
            require("redis")
            database_url = stack.enter_context(postgres_database())
            environment = server_environment(
                directory, DATABASE_URL=database_url, REDIS_URL=REDIS_URL
            )
        else:
            environment = server_environment(directory)
        manage(environment, "migrate", "--noinput")
        manage(
            environment,
            "import_dataset",
            _csv(directory.parent / f"{kind}-sales.csv"),
            "--slug",
            "sales",
            "--primary-key",
            "order_id",
        )
        (directory.parent / f"{kind}-other.csv").write_text("code,label\nk1,first\nk2,second\n")
        manage(
            environment,
            "import_dataset",
            str(directory.parent / f"{kind}-other.csv"),
            "--slug",
            "other",
            "--primary-key",
            "code",
        )
        keys = {
            "reader": manage(environment, "issue_key", "reader", "--all").splitlines()[-1],
            "eu": manage(
                environment, "issue_key", "eu", "--all", "--row-filter", "sales:region=EU"
            ).splitlines()[-1],
            "outsider": manage(
                environment, "issue_key", "outsider", "--datasets", "other"
            ).splitlines()[-1],
        }
        port = stack.enter_context(
            running(environment, gunicorn_workers=2 if kind == "production" else 0)
        )
        yield environment, port, keys


@pytest.fixture(scope="module", params=["embedded", "production"])
def gateway(request, tmp_path_factory):
    with _gateway(request.param, tmp_path_factory.mktemp(request.param) / "data") as served:
        yield served


async def _session(port: int, key: str, mode: str, work):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        transport = streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:
            expected = "2025-11-25" if mode == "legacy" else mode
            assert client.protocol_version == expected
            return await work(client)


def session(port: int, key: str, mode: str, work):
    """Run `work(client)` in an SDK client session with this key, in this mode."""
    return asyncio.run(_session(port, key, mode, work))


def _structured(result) -> dict:
    assert result.is_error is False, result.content
    return result.structured_content


def _error(result) -> dict:
    assert result.is_error is True, result.structured_content
    return result.structured_content["error"]


@pytest.mark.parametrize("mode", MODES)
def test_every_tool(gateway, mode):
    _, port, keys = gateway

    async def work(client):
        tools = (await client.list_tools()).tools
        assert [tool.name for tool in tools] == [
            "list_datasets",
            "describe_dataset",
            "query_rows",
            "get_row",
            "aggregate",
            "search",
            "fetch",
        ]
        assert all(
            tool.annotations.read_only_hint and tool.annotations.open_world_hint is False
            for tool in tools
        )
        listed = _structured(await client.call_tool("list_datasets", {}))
        described = _structured(await client.call_tool("describe_dataset", {"dataset": "sales"}))
        page = _structured(
            await client.call_tool(
                "query_rows",
                {
                    "dataset": "sales",
                    "filters": {"product": "Product B"},
                    "ordering": ["-revenue"],
                    "limit": 5,
                },
            )
        )
        row = _structured(await client.call_tool("get_row", {"dataset": "sales", "key": 7}))
        groups = _structured(await client.call_tool("aggregate", Q2))
        found = _structured(await client.call_tool("search", {"query": "order 42 "}))
        fetched = _structured(await client.call_tool("fetch", {"id": found["results"][0]["id"]}))
        return listed, described, page, row, groups, found, fetched

    listed, described, page, row, groups, found, fetched = session(port, keys["reader"], mode, work)
    assert [item["slug"] for item in listed["results"]] == ["other", "sales"]
    assert described["primary_key"] == "order_id"
    assert [column["name"] for column in described["columns"]] == list(ROWS[0])
    product_b = sorted(
        (r for r in ROWS if r["product"] == "Product B"), key=lambda r: -r["revenue"]
    )
    assert [r["order_id"] for r in page["results"]] == [r["order_id"] for r in product_b[:5]]
    assert page["count"] == len(product_b) and page["next_offset"] == 5
    assert row["order_id"] == 7 and row["note"] == ROWS[6]["note"]
    q2 = [r for r in ROWS if "2024-04-01" <= r["order_date"] <= "2024-06-30"]
    totals = {p: sum(r["revenue"] for r in q2 if r["product"] == p) for p in PRODUCTS}
    assert groups["results"] == [
        {"product": p, "sum_revenue": totals[p]} for p in sorted(totals, key=lambda p: -totals[p])
    ]
    assert groups["count"] == 3 and groups["truncated"] is False
    assert found["results"][0] == {
        "id": "sales:42",
        "title": "Product A",
        "url": f"http://127.0.0.1:{port}/api/v1/datasets/sales/rows/42/",
    }
    assert fetched["id"] == "sales:42" and "note: order 42 for" in fetched["text"]


@pytest.mark.parametrize("mode", MODES)
def test_a_bad_argument_has_the_rest_code_and_message(gateway, mode):
    _, port, keys = gateway

    async def work(client):
        return [
            _error(
                await client.call_tool(
                    "query_rows", {"dataset": "sales", "filters": {"revenu__gt": 10}}
                )
            ),
            _error(
                await client.call_tool(
                    "aggregate", {"dataset": "sales", "metrics": ["avg:product"]}
                )
            ),
        ]

    errors = session(port, keys["reader"], mode, work)
    for error, url in zip(
        errors,
        [
            "/api/v1/datasets/sales/rows/?revenu__gt=10",
            "/api/v1/datasets/sales/aggregate/?metrics=avg:product",
        ],
        strict=True,
    ):
        status, _, body = get(port, url, keys["reader"])
        assert status == 400
        assert (error["code"], error["message"]) == (
            body["error"]["code"],
            body["error"]["message"],
        )


@pytest.mark.parametrize("mode", MODES)
def test_scope_and_row_filter_hold_on_every_tool(gateway, mode):
    _, port, keys = gateway
    us_row = next(r["order_id"] for r in ROWS if r["region"] == "US")

    async def as_eu(client):
        page = _structured(
            await client.call_tool("query_rows", {"dataset": "sales", "limit": 1000})
        )
        groups = _structured(
            await client.call_tool(
                "aggregate", {"dataset": "sales", "group_by": ["region"], "metrics": ["count"]}
            )
        )
        found = _structured(await client.call_tool("search", {"query": "desk"}))
        fetched = [
            _structured(await client.call_tool("fetch", {"id": item["id"]}))
            for item in found["results"]
        ]
        hidden_row = _error(await client.call_tool("get_row", {"dataset": "sales", "key": us_row}))
        hidden_fetch = _error(await client.call_tool("fetch", {"id": f"sales:{us_row}"}))
        return page, groups, found, fetched, hidden_row, hidden_fetch

    page, groups, found, fetched, hidden_row, hidden_fetch = session(port, keys["eu"], mode, as_eu)
    eu = [r for r in ROWS if r["region"] == "EU"]
    assert page["count"] == len(eu) and {r["region"] for r in page["results"]} == {"EU"}
    assert groups["results"] == [{"region": "EU", "count": len(eu)}]
    assert found["results"]
    assert all("region: EU" in item["text"] for item in fetched)
    assert hidden_row["code"] == hidden_fetch["code"] == "not_found"

    async def as_outsider(client):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        listed = _structured(await client.call_tool("list_datasets", {}))
        refused = [
            _error(await client.call_tool(name, arguments))
            for name, arguments in [
                ("describe_dataset", {"dataset": "sales"}),
                ("query_rows", {"dataset": "sales"}),
                ("get_row", {"dataset": "sales", "key": 1}),
                ("aggregate", {"dataset": "sales"}),
                ("fetch", {"id": "sales:1"}),
            ]
        ]
        found = _structured(await client.call_tool("search", {"query": "desk"}))
        return tools, listed, refused, found

    tools, listed, refused, found = session(port, keys["outsider"], mode, as_outsider)
    assert tools["query_rows"].input_schema["properties"]["dataset"]["enum"] == ["other"]
    assert [item["slug"] for item in listed["results"]] == ["other"]
    assert {error["code"] for error in refused} == {"dataset_not_found"}
    assert found["results"] == []


def _post(port: int, body: dict, **headers) -> httpx2.Response:
    return httpx2.post(
        f"http://127.0.0.1:{port}/mcp",
        content=json.dumps(body),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **headers,
        },
        timeout=10,
    )


def test_missing_key_is_401_with_www_authenticate(gateway):
    _, port, _ = gateway
    response = _post(
        port,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer resource_metadata="http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"'
    )

    async def work(client):
        return None

    with pytest.raises(BaseException):  # noqa: B017 - the SDK reports the 401 as its own error
        asyncio.run(_session(port, "", "legacy", work))


def test_a_header_that_disagrees_with_the_body_is_32020(gateway):
    _, port, keys = gateway
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"_meta": meta, "name": "list_datasets", "arguments": {}},
    }
    headers = {
        "Authorization": f"Bearer {keys['reader']}",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
    }
    assert _post(port, body, **headers, **{"Mcp-Name": "list_datasets"}).status_code == 200
    response = _post(port, body, **headers, **{"Mcp-Name": "fetch"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32020


def test_a_bad_origin_is_403(gateway):
    _, port, keys = gateway
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Authorization": f"Bearer {keys['reader']}"}
    assert _post(port, body, **headers, Origin="https://chatgpt.com").status_code == 200
    assert _post(port, body, **headers, Origin="https://evil.example").status_code == 403


def test_get_is_405(gateway):
    _, port, keys = gateway
    response = httpx2.get(
        f"http://127.0.0.1:{port}/mcp",
        headers={"Authorization": f"Bearer {keys['reader']}", "Accept": "text/event-stream"},
    )
    assert response.status_code == 405


def test_tool_calls_are_recorded_for_usage(gateway):
    environment, port, keys = gateway

    async def work(client):
        await client.call_tool("aggregate", Q2)

    session(port, keys["reader"], "legacy", work)
    # The server moves its buffer to the database every few seconds, on a later request (the
    # embedded default buffers in process): nudge it with calls that are only counted.
    deadline = time.monotonic() + 30
    while True:
        _post(port, {"jsonrpc": "2.0", "id": 1, "method": "ping"})
        shown = manage(
            environment,
            "shell",
            "-c",
            "from keys.usage import usage_flush; from keys.models import UsageRecord; usage_flush(); "
            "print(list(UsageRecord.objects.filter(key_id__in=[k.split('_')[1] for k in "
            f"{sorted(keys.values())!r}]).values_list('operation', 'dataset', 'status')))",
        )
        if "('mcp:aggregate', 'sales', 200)" in shown or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "('mcp:aggregate', 'sales', 200)" in shown


@pytest.mark.parametrize("gateway", ["production"], indirect=True)
def test_one_clients_calls_are_answered_by_both_workers(gateway):
    environment, port, keys = gateway

    async def work(client):
        listed = _structured(await client.call_tool("list_datasets", {}))
        totals = _structured(await client.call_tool("aggregate", Q2))
        return listed["count"], totals["results"]

    async def sessions(mode):
        return await asyncio.gather(*(_session(port, keys["reader"], mode, work) for _ in range(6)))

    log = Path(environment["GATEWAY_DATA_DIR"]) / f"server-{port}.log"
    before = len(log.read_text().splitlines())
    answers = [answer for mode in MODES for answer in asyncio.run(sessions(mode))]
    assert all(answer == answers[0] for answer in answers)
    lines = log.read_text().splitlines()[before:]
    workers = {line.rsplit("pid=", 1)[1] for line in lines if '"POST /mcp ' in line}
    assert len(workers) == 2, lines[-20:]
