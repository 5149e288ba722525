"""POST /mcp tried as an attacker would: bodies too large, nested too deeply, batches. Each
gets a short JSON-RPC error at once, never a 500."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from access.mcp import MAX_MESSAGE_BYTES
from keys.services import api_key_issue
from tests.keys.conftest import make_dataset

pytestmark = pytest.mark.django_db

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@pytest.fixture
def reader() -> Client:
    make_dataset("orders")
    key = api_key_issue(name="reader", all_datasets=True).raw_key
    return Client(headers={"Authorization": f"Bearer {key}"})


def _post(client: Client, body: bytes):
    return client.post("/mcp", body, content_type="application/json")


HOSTILE_BODIES = [
    # (name, body, HTTP status, JSON-RPC error code, words of the message)
    (
        "1 MB message",
        json.dumps({**PING, "params": {"padding": "x" * 1_000_000}}).encode(),
        413,
        -32600,
        f"at most {MAX_MESSAGE_BYTES} bytes",
    ),
    ("100000 levels of [", b"[" * 100_000 + b"]" * 100_000, 400, -32700, "nested too deeply"),
    ("100000 unclosed [", b"[" * 100_000, 400, -32700, "nested too deeply"),
    (
        "40000 levels of {",
        b'{"a":' * 40_000 + b"1" + b"}" * 40_000,
        400,
        -32700,
        "nested too deeply",
    ),
    (
        "nested inside a message",
        json.dumps(PING).encode()[:-1] + b',"params":' + b"[" * 50_000,
        400,
        -32700,
        "nested too deeply",
    ),
    ("a batch", json.dumps([PING, {**PING, "id": 2}]).encode(), 400, -32600, "no batches"),
    (
        "a batch of 5000",
        json.dumps([{**PING, "id": n} for n in range(5000)]).encode(),
        400,
        -32600,
        "no batches",
    ),
    ("an empty batch", b"[]", 400, -32600, "no batches"),
    ("a number too long to read", b"1" * 100_000, 400, -32700, "not JSON"),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [row[1:] for row in HOSTILE_BODIES],
    ids=[row[0] for row in HOSTILE_BODIES],
)
def test_a_hostile_body_gets_a_short_json_rpc_error(reader, body, status, code, words):
    response = _post(reader, body)
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert len(response.content) < 500  # nothing of the body is echoed
    answer = response.json()
    assert answer["jsonrpc"] == "2.0" and answer["id"] is None
    assert answer["error"]["code"] == code
    assert words in answer["error"]["message"]


def test_a_message_nested_within_the_parsers_reach_is_a_tool_error_not_a_500(reader):
    arguments = {"dataset": "orders", "filters": {"region": json.loads("[" * 200 + "]" * 200)}}
    body = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "query_rows", "arguments": arguments},
    }
    response = _post(reader, json.dumps(body).encode())
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["isError"] is True
    assert result["structuredContent"]["error"]["status"] == 400


def test_a_message_just_under_the_bound_is_served(reader):
    body = json.dumps({**PING, "params": {"_meta": {"padding": ""}}})
    padding = MAX_MESSAGE_BYTES - len(body)
    body = json.dumps({**PING, "params": {"_meta": {"padding": "x" * padding}}}).encode()
    assert len(body) == MAX_MESSAGE_BYTES
    response = _post(reader, body)
    assert response.status_code == 200, response.content[:300]
    assert response.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}


def test_a_large_body_without_a_credential_is_not_read(db):
    response = _post(Client(), json.dumps({**PING, "pad": "x" * 5_000_000}).encode())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
