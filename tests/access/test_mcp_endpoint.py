"""POST /mcp in process: the JSON-RPC edge cases of both revision families, and the tools as a
key with a scope, row filters, a rate limit and the size guard sees them."""

from __future__ import annotations

import json

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from gatewaysite import env
from keys.models import UsageRecord
from keys.services import RowFilter, api_key_issue
from keys.usage import discard_buffer, usage_flush
from tests.datasets.sales_fixture import register_sales, sales_rows

pytestmark = pytest.mark.django_db

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}
Q2 = {
    "dataset": "sales",
    "filters": {"order_date__gte": "2024-04-01", "order_date__lte": "2024-06-30"},
    "group_by": ["product"],
    "metrics": ["sum:revenue"],
    "ordering": ["-sum_revenue"],
}


@pytest.fixture
def rows():
    return sales_rows()


@pytest.fixture
def sales(rows):
    return register_sales(rows)


def _client(raw_key: str | None, **headers) -> Client:
    if raw_key:
        headers["Authorization"] = f"Bearer {raw_key}"
    return Client(headers=headers)


@pytest.fixture
def reader(sales):
    return _client(api_key_issue(name="reader", all_datasets=True).raw_key)


@pytest.fixture
def eu_reader(sales):
    key = api_key_issue(
        name="eu", all_datasets=True, row_filters=[RowFilter("sales", "region", "EU")]
    )
    return _client(key.raw_key)


@pytest.fixture
def outsider(sales):
    register_sales(sales_rows(10), slug="other")
    return _client(api_key_issue(name="outsider", datasets=["other"]).raw_key)


def _post(client: Client, body, **headers):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/mcp", data, content_type="application/json", headers=headers)


def rpc(client: Client, method: str, params: dict | None = None, **headers) -> dict:
    response = _post(
        client, {"jsonrpc": "2.0", "id": 7, "method": method, "params": params or {}}, **headers
    )
    assert response["Content-Type"] == "application/json", response.content
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] in (7, None)
    body["status"] = response.status_code
    return body


def modern(client: Client, method: str, params: dict | None = None, **headers) -> dict:
    names = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if method == "tools/call":
        names["Mcp-Name"] = params["name"]
    return rpc(client, method, {"_meta": META, **(params or {})}, **{**names, **headers})


def call(client: Client, name: str, arguments: dict) -> dict:
    body = rpc(
        client,
        "tools/call",
        {"name": name, "arguments": arguments},
        **{"MCP-Protocol-Version": "2025-06-18"},
    )
    assert body["status"] == 200, body
    return body["result"]


def rest_error(client: Client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 400, response.content
    return response.json()["error"]


# Transport


def test_get_is_405_with_allow_post(reader):
    response = reader.get("/mcp")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_missing_key_is_401_pointing_at_the_protected_resource_metadata(sales, settings):
    settings.GATEWAY_PUBLIC_URL = "https://data.example.com"
    response = _post(_client(None), {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        'Bearer resource_metadata="https://data.example.com/.well-known/oauth-protected-resource/mcp"'
    )
    assert response.json()["error"]["code"] == "unauthorized"


def test_unknown_key_is_401(sales):
    response = _post(_client("gw_abc_" + "x" * 32), {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer resource_metadata="http://testserver/')


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost:5173", "null"])
def test_origin_outside_the_allowed_list_is_403(reader, origin):
    response = _post(reader, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, Origin=origin)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_origin"


def test_allowed_origins_and_no_origin_are_served(reader, settings):
    for origin in ("https://chatgpt.com", "https://claude.ai", None):
        headers = {"Origin": origin} if origin else {}
        assert rpc(reader, "ping", **headers) == {
            "jsonrpc": "2.0",
            "id": 7,
            "result": {},
            "status": 200,
        }
    settings.GATEWAY_ALLOWED_ORIGINS = ["https://inspector.example"]
    assert (
        _post(
            reader, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, Origin="https://chatgpt.com"
        ).status_code
        == 403
    )


def test_allowed_origins_setting_is_strict(monkeypatch):
    monkeypatch.setenv("GATEWAY_ALLOWED_ORIGINS", "https://chatgpt.com, https://Claude.ai/")
    assert env.env_origins("GATEWAY_ALLOWED_ORIGINS", []) == [
        "https://chatgpt.com",
        "https://claude.ai",
    ]
    monkeypatch.setenv("GATEWAY_ALLOWED_ORIGINS", "chatgpt.com")
    with pytest.raises(ImproperlyConfigured, match="GATEWAY_ALLOWED_ORIGINS"):
        env.env_origins("GATEWAY_ALLOWED_ORIGINS", [])


def test_body_that_is_not_json_is_a_parse_error(reader):
    response = _post(reader, "{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


def test_batches_are_refused(reader):
    response = _post(reader, [{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
        {"jsonrpc": "2.0", "id": 3, "result": {}},
    ],
)
def test_notifications_and_responses_are_accepted_with_202(reader, message):
    response = _post(reader, message)
    assert response.status_code == 202
    assert response.content == b""


# Initialize era


def test_initialize_agrees_on_a_known_revision_and_teaches_the_grammar(reader):
    for asked, agreed in [
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ]:
        result = rpc(
            reader,
            "initialize",
            {
                "protocolVersion": asked,
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        )["result"]
        assert result["protocolVersion"] == agreed
        assert result["capabilities"]["tools"] == {"listChanged": False}
        assert result["serverInfo"]["name"] == "gateway"
        assert '"order_date__gte": "2024-04-01"' in result["instructions"]
        assert "sum:revenue" in result["instructions"]


def test_no_session_id_is_issued_and_none_is_needed(reader):
    response = _post(
        reader,
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
    assert "Mcp-Session-Id" not in response
    # Any worker answers a call without an initialize before it.
    assert call(reader, "list_datasets", {})["structuredContent"]["count"] == 1


def test_unknown_method_and_bad_params(reader):
    assert rpc(reader, "resources/list")["error"]["code"] == -32601
    assert rpc(reader, "nope")["error"]["code"] == -32601
    assert rpc(reader, "tools/call", {"arguments": {}})["error"]["code"] == -32602
    unknown = rpc(reader, "tools/call", {"name": "drop_table", "arguments": {}})
    assert unknown["error"]["code"] == -32602
    assert "list_datasets" in unknown["error"]["message"]


def test_tools_are_fixed_read_only_and_scoped(reader, outsider):
    tools = rpc(reader, "tools/list")["result"]["tools"]
    assert [tool["name"] for tool in tools] == [
        "list_datasets",
        "describe_dataset",
        "query_rows",
        "get_row",
        "aggregate",
        "search",
        "fetch",
    ]
    for tool in tools:
        assert tool["annotations"] | {"title": None} == {
            "title": None,
            "readOnlyHint": True,
            "destructiveHint": False,
            "idempotentHint": True,
            "openWorldHint": False,
        }
        assert tool["inputSchema"]["type"] == "object"
        assert tool["outputSchema"]["type"] == "object"
        # One type per schema position: clients with single-type dialects (Gemini) reject lists.
        assert '"type": [' not in json.dumps(tool)
    by_name = {tool["name"]: tool for tool in tools}
    assert by_name["aggregate"]["inputSchema"]["properties"]["dataset"]["enum"] == [
        "other",
        "sales",
    ]
    theirs = {tool["name"]: tool for tool in rpc(outsider, "tools/list")["result"]["tools"]}
    assert theirs["query_rows"]["inputSchema"]["properties"]["dataset"]["enum"] == ["other"]


# 2026-07-28


def test_discover_lists_the_revision_and_stamps_server_info(reader):
    body = modern(reader, "server/discover")
    assert body["status"] == 200
    result = body["result"]
    assert result["supportedVersions"] == [MODERN]
    assert result["capabilities"]["tools"] == {"listChanged": False}
    assert result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "gateway"
    assert "sum:revenue" in result["instructions"]


def test_modern_tools_call(reader):
    body = modern(reader, "tools/call", {"name": "aggregate", "arguments": Q2})
    assert body["status"] == 200
    assert body["result"]["structuredContent"]["results"][0]["product"]


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"MCP-Protocol-Version": "2025-11-25"}, None),  # an initialize-era header: not modern
        ({"Mcp-Method": "tools/list"}, "mcp-method"),
        ({"Mcp-Name": "fetch"}, "mcp-name"),
    ],
)
def test_a_header_that_disagrees_with_the_body_is_32020(reader, headers, fragment):
    body = modern(reader, "tools/call", {"name": "aggregate", "arguments": Q2}, **headers)
    if fragment is None:
        # The header says 2025-11-25, the body's envelope 2026-07-28: served as the header says.
        assert body["status"] == 200
        return
    assert body["status"] == 400
    assert body["error"]["code"] == -32020
    assert fragment in body["error"]["message"]


def test_an_envelope_without_its_header_is_32020(reader):
    body = rpc(reader, "tools/list", {"_meta": META})
    assert body["status"] == 400
    assert body["error"]["code"] == -32020


def test_an_unknown_revision_is_32022_with_the_supported_ones(reader):
    meta = {**META, "io.modelcontextprotocol/protocolVersion": "2030-01-01"}
    body = rpc(
        reader,
        "tools/list",
        {"_meta": meta},
        **{"MCP-Protocol-Version": "2030-01-01", "Mcp-Method": "tools/list"},
    )
    assert body["status"] == 400
    assert body["error"]["code"] == -32022
    assert body["error"]["data"]["supported"] == [MODERN]


def test_initialize_era_methods_are_not_found_in_2026_07_28(reader):
    body = modern(reader, "ping")
    assert body["status"] == 404
    assert body["error"]["code"] == -32601


# Tools


def test_q2_aggregate_matches_rest(reader):
    result = call(reader, "aggregate", Q2)
    rest = reader.get(
        "/api/v1/datasets/sales/aggregate/?order_date__gte=2024-04-01&order_date__lte=2024-06-30"
        "&group_by=product&metrics=sum:revenue&ordering=-sum_revenue"
    ).json()
    assert result["isError"] is False
    assert result["structuredContent"]["results"] == rest["results"]
    assert result["structuredContent"]["count"] == len(rest["results"])
    assert result["structuredContent"]["next_offset"] is None
    text = result["content"][0]["text"]
    assert text.splitlines()[1] == "product,sum_revenue"
    assert "{" not in text  # a table, not a second copy of the JSON


def test_comma_separated_strings_are_accepted(reader):
    listed = call(
        reader,
        "aggregate",
        {**Q2, "group_by": "product", "metrics": "sum:revenue,count", "ordering": "-sum_revenue"},
    )
    assert set(listed["structuredContent"]["results"][0]) == {"product", "sum_revenue", "count"}


def test_rows_page_and_continue(reader, rows):
    first = call(
        reader,
        "query_rows",
        {
            "dataset": "sales",
            "filters": {"region__in": ["EU", "US"]},
            "fields": ["order_id", "region"],
            "limit": 50,
        },
    )
    page = first["structuredContent"]
    expected = [row["order_id"] for row in rows if row["region"] in ("EU", "US")]
    assert page["count"] == len(expected)
    assert [row["order_id"] for row in page["results"]] == expected[:50]
    assert page["next_offset"] == 50
    second = call(
        reader,
        "query_rows",
        {
            "dataset": "sales",
            "filters": {"region__in": "EU,US"},
            "fields": "order_id,region",
            "limit": 50,
            "offset": 50,
        },
    )
    assert [row["order_id"] for row in second["structuredContent"]["results"]] == expected[50:100]


@pytest.mark.parametrize(
    ("tool", "arguments", "url"),
    [
        ("query_rows", {"filters": {"revnue__gt": 10}}, "rows/?revnue__gt=10"),
        ("query_rows", {"filters": {"revenue__gt": "lots"}}, "rows/?revenue__gt=lots"),
        ("query_rows", {"ordering": ["-customer_email"]}, "rows/?ordering=-customer_email"),
        ("query_rows", {"limit": 100000}, "rows/?limit=100000"),
        ("aggregate", {"metrics": ["sum:product"]}, "aggregate/?metrics=sum:product"),
        (
            "aggregate",
            {"group_by": ["order_date__fortnight"]},
            "aggregate/?group_by=order_date__fortnight",
        ),
        ("aggregate", {"ordering": ["-sum_units"]}, "aggregate/?ordering=-sum_units"),
    ],
)
def test_a_bad_argument_is_a_tool_error_with_the_rest_code_and_message(
    reader, tool, arguments, url
):
    result = call(reader, tool, {"dataset": "sales", **arguments})
    expected = rest_error(reader, f"/api/v1/datasets/sales/{url}")
    assert result["isError"] is True
    assert result["structuredContent"]["error"]["code"] == expected["code"]
    assert result["structuredContent"]["error"]["message"] == expected["message"]
    assert expected["message"] in result["content"][0]["text"]


def test_unknown_arguments_and_reserved_filters_are_tool_errors(reader):
    unknown = call(reader, "query_rows", {"dataset": "sales", "where": "1=1"})
    assert (
        unknown["isError"] and unknown["structuredContent"]["error"]["code"] == "unknown_parameter"
    )
    reserved = call(reader, "query_rows", {"dataset": "sales", "filters": {"limit": 5}})
    assert (
        reserved["isError"]
        and reserved["structuredContent"]["error"]["code"] == "unknown_parameter"
    )
    missing = call(reader, "describe_dataset", {})
    assert missing["isError"] and "dataset" in missing["structuredContent"]["error"]["message"]


def test_a_dataset_outside_the_scope_is_refused_like_an_unknown_one(outsider):
    listed = call(outsider, "list_datasets", {})["structuredContent"]
    assert [item["slug"] for item in listed["results"]] == ["other"]
    for tool, arguments in [
        ("describe_dataset", {"dataset": "sales"}),
        ("query_rows", {"dataset": "sales"}),
        ("get_row", {"dataset": "sales", "key": 1}),
        ("aggregate", {"dataset": "sales"}),
        ("fetch", {"id": "sales:1"}),
    ]:
        refused = call(outsider, tool, arguments)
        unknown = call(
            outsider,
            tool,
            {**arguments, "dataset": "nosuch"} if "dataset" in arguments else {"id": "nosuch:1"},
        )
        assert refused["isError"] and unknown["isError"]
        assert refused["structuredContent"]["error"]["code"] == "dataset_not_found"
        assert refused["structuredContent"]["error"]["message"].replace("sales", "X") == unknown[
            "structuredContent"
        ]["error"]["message"].replace("nosuch", "X")
    assert all(
        not item["id"].startswith("sales:")
        for item in call(outsider, "search", {"query": "gift"})["structuredContent"]["results"]
    )


def test_row_filter_holds_on_every_tool(eu_reader, rows):
    us_row = next(row["order_id"] for row in rows if row["region"] == "US")
    eu_row = next(row["order_id"] for row in rows if row["region"] == "EU")
    page = call(eu_reader, "query_rows", {"dataset": "sales", "limit": 1000})["structuredContent"]
    assert page["count"] == sum(row["region"] == "EU" for row in rows)
    assert {row["region"] for row in page["results"]} == {"EU"}
    groups = call(eu_reader, "aggregate", {"dataset": "sales", "group_by": ["region"]})[
        "structuredContent"
    ]
    assert [group["region"] for group in groups["results"]] == ["EU"]
    assert (
        call(eu_reader, "get_row", {"dataset": "sales", "key": eu_row})["structuredContent"][
            "region"
        ]
        == "EU"
    )
    hidden = call(eu_reader, "get_row", {"dataset": "sales", "key": us_row})
    assert hidden["isError"] and hidden["structuredContent"]["error"]["code"] == "not_found"
    found = call(eu_reader, "search", {"query": "gift"})["structuredContent"]["results"]
    assert found
    for item in found:
        fetched = call(eu_reader, "fetch", {"id": item["id"]})["structuredContent"]
        assert "region: EU" in fetched["text"]
    hidden = call(eu_reader, "fetch", {"id": f"sales:{us_row}"})
    assert hidden["isError"] and hidden["structuredContent"]["error"]["code"] == "not_found"
    described = call(eu_reader, "describe_dataset", {"dataset": "sales"})["structuredContent"]
    assert described["row_count"] == page["count"]


def test_search_and_fetch_shapes(reader, rows):
    found = call(reader, "search", {"query": "GIFT 12"})["structuredContent"]["results"]
    assert found[0] == {
        "id": "sales:12",
        "title": "Product A",
        "url": "http://testserver/api/v1/datasets/sales/rows/12/",
    }
    fetched = call(reader, "fetch", {"id": "sales:12"})["structuredContent"]
    assert set(fetched) == {"id", "title", "text", "url", "metadata"}
    assert fetched["id"] == "sales:12"
    assert "note: gift 12" in fetched["text"]
    assert "customer_email: b***@example.com" in fetched["text"]  # masked as in REST
    assert fetched["metadata"]["dataset"] == "sales"
    bad = call(reader, "fetch", {"id": "twelve"})
    assert bad["isError"] and bad["structuredContent"]["error"]["code"] == "invalid_value"


def test_get_row_matches_rest(reader):
    result = call(reader, "get_row", {"dataset": "sales", "key": "12"})
    assert result["structuredContent"] == reader.get("/api/v1/datasets/sales/rows/12/").json()
    assert "order_id: 12" in result["content"][0]["text"]


def test_size_guard_cuts_the_page_and_says_where_to_continue(reader, settings):
    settings.GATEWAY_MAX_RESPONSE_CHARS = 4000
    response = _post(
        reader,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "query_rows", "arguments": {"dataset": "sales", "limit": 240}},
        },
    )
    assert len(response.content.decode()) < 4000
    page = response.json()["result"]["structuredContent"]
    assert page["truncated"] is True
    assert 0 < len(page["results"]) < 240
    assert page["next_offset"] == len(page["results"])
    assert "cut to the size limit" in response.json()["result"]["content"][0]["text"]


def test_a_wide_description_is_cut_to_the_size_guard_and_the_rest_asked_by_name(reader, settings):
    whole = call(reader, "describe_dataset", {"dataset": "sales"})["structuredContent"]
    assert whole["truncated"] is False
    names = [column["name"] for column in whole["columns"]]
    settings.GATEWAY_MAX_RESPONSE_CHARS = 4000
    response = _post(
        reader,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "describe_dataset", "arguments": {"dataset": "sales"}},
        },
    )
    assert len(response.content.decode()) < 4000
    cut = response.json()["result"]["structuredContent"]
    assert cut["truncated"] is True
    assert 0 < len(cut["columns"]) < len(names)
    rest = names[len(cut["columns"]) :]
    asked = call(reader, "describe_dataset", {"dataset": "sales", "columns": rest[:2]})
    assert [column["name"] for column in asked["structuredContent"]["columns"]] == rest[:2]
    unknown = call(reader, "describe_dataset", {"dataset": "sales", "columns": ["nope"]})
    assert unknown["isError"] is True
    assert unknown["structuredContent"]["error"]["code"] == "unknown_column"


def test_rate_limit_is_a_tool_error_with_the_wait(sales):
    client = _client(api_key_issue(name="slow", all_datasets=True, rate="2/m").raw_key)
    with time_machine.travel("2026-03-02 10:00:30", tick=False):
        for _ in range(2):
            assert call(client, "list_datasets", {})["isError"] is False
        limited = call(client, "list_datasets", {})
    assert limited["isError"] is True
    error = limited["structuredContent"]["error"]
    assert error["code"] == "rate_limited"
    assert error["retry_after"] >= 1
    assert f"retry after {error['retry_after']} seconds" in error["message"]


def test_usage_records_each_tool_call_once(reader):
    discard_buffer()
    call(reader, "aggregate", Q2)
    call(reader, "query_rows", {"dataset": "sales", "filters": {"nope": 1}})
    rpc(reader, "tools/list")
    usage_flush()
    records = list(
        UsageRecord.objects.order_by("time", "id").values_list(
            "operation", "dataset", "status", "rows", "error_code"
        )
    )
    assert records == [
        ("mcp:aggregate", "sales", 200, 4, ""),
        ("mcp:query_rows", "sales", 400, None, "unknown_parameter"),
    ]
