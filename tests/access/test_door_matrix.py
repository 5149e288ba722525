"""Every door asks one policy: a door x credential table of what each caller gets (pretix style).

Doors: the REST operations (list, describe, rows, row by key, aggregate, CSV), /openapi.json public
and private, the Connect page, and each MCP tool. Credentials: keys unscoped, scoped elsewhere,
row-filtered and on a personal-data dataset; OAuth users with a user grant and a group grant; a
revoked key, an expired token, no credential. Each cell names what the caller sees of the `sales`
dataset, whose rows are in three regions:

- `all`: rows and statistics of every region;
- `Europa`: only the rows, and statistics computed only over the rows, of its row filter;
- `hidden`: nothing of the dataset (404 dataset_not_found, or not listed);
- `withheld`: the dataset without any value (the public schema of a row-filtered dataset);
- `401`: refused; `n/a`: the door takes no such credential (the Connect page takes a key id).

Every answer is checked for personal data too (a masked e-mail never raw, a hidden column never
at all), and every authenticated call for its budget: one unit per call at the data doors,
none at the schema doors, always under the caller's own budget.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory
from django_ratelimit.core import get_usage
from oauth2_provider.models import AccessToken, Application, set_token_value

from accounts.models import AccessGrant, GrantRowFilter
from datasets.engine.statistics import statistics_forget
from datasets.models import Dataset
from datasets.services import dataset_import
from keys import usage
from keys.ratelimit import GROUP
from keys.services import RowFilter, api_key_issue, api_key_revoke

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2025, 6, 10, 12, 0, 0, tzinfo=dt.UTC)
RATE = "1000/m"
REGIONS = {"Europa": (1, 2, 3), "Latam": (4, 5, 6), "Asiapac": (7, 8, 9)}
MONTH = {"Europa": "01", "Latam": "06", "Asiapac": "11"}
RAW_EMAIL = "person{n}.secret@example.com"
HIDDEN_NOTE = "NOTE-HIDDEN-{n}"
CREDENTIALS = [
    "unscoped key",
    "scoped key",
    "row-filtered key",
    "key on a PII dataset",
    "user grant",
    "group grant",
    "revoked key",
    "expired token",
    "anonymous",
]
# One row per door: what each credential sees, in the order of CREDENTIALS.
MATRIX = {
    "list": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "describe": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "rows": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "row by key": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "aggregate": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "csv": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "openapi public": ["withheld"] * 9,
    "openapi private": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "connect page": ["all", "hidden", "Europa", "all", "n/a", "n/a", "hidden", "n/a", "n/a"],
    "mcp list_datasets": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "mcp describe_dataset": [
        "all",
        "hidden",
        "Europa",
        "all",
        "Europa",
        "all",
        "401",
        "401",
        "401",
    ],
    "mcp query_rows": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "mcp get_row": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "mcp aggregate": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "mcp search": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
    "mcp fetch": ["all", "hidden", "Europa", "all", "Europa", "all", "401", "401", "401"],
}
# Units of the caller's budget one call spends at each door.
SPENDS = {door: 0 if door.startswith(("openapi", "connect")) else 1 for door in MATRIX}


@pytest.fixture(autouse=True)
def _frozen():
    statistics_forget()
    usage.discard_buffer()
    with time_machine.travel(NOON, tick=False):
        yield
    statistics_forget()


def _csv(path, header: str, lines: list[str]):
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


@pytest.fixture
def world(tmp_path, settings):
    """The datasets, the callers and how to present each one."""
    settings.GATEWAY_FAILED_AUTH_RATE = "1000/m"
    lines = []
    for region, numbers in REGIONS.items():
        for n in numbers:
            lines.append(
                f"{n},{region},Widget,{n * 1000 + 0.25},2024-{MONTH[region]}-{n:02d},"
                f"{RAW_EMAIL.format(n=n)},{HIDDEN_NOTE.format(n=n)}"
            )
    header = "order_id,region,product,revenue,order_date,email,note"
    dataset_import(
        path=_csv(tmp_path / "sales.csv", header, lines),
        slug="sales",
        primary_key="order_id",
        pii={"email": "mask", "note": "hide"},
    )
    dataset_import(
        path=_csv(tmp_path / "other.csv", "item_id,label", ["1,one", "2,two"]),
        slug="other",
        primary_key="item_id",
    )
    sales = Dataset.objects.get(slug="sales")
    europa = [RowFilter(slug="sales", column="region", value="Europa")]
    keys = {
        "unscoped key": api_key_issue(name="all", all_datasets=True, rate=RATE),
        "scoped key": api_key_issue(name="other", datasets=["other"], rate=RATE),
        "row-filtered key": api_key_issue(
            name="eu", datasets=["sales"], row_filters=europa, rate=RATE
        ),
        "key on a PII dataset": api_key_issue(name="pii", datasets=["sales"], rate=RATE),
        "revoked key": api_key_issue(name="gone", all_datasets=True, rate=RATE),
    }
    api_key_revoke(key_id=keys["revoked key"].key.key_id)
    alice = User.objects.create_user("alice")
    own = AccessGrant.objects.create(user=alice, rate=RATE)
    own.datasets.set([sales])
    GrantRowFilter.objects.create(grant=own, dataset=sales, column="region", value="Europa")
    bob = User.objects.create_user("bob")
    analysts = Group.objects.create(name="analysts")
    bob.groups.add(analysts)
    AccessGrant.objects.create(group=analysts, all_datasets=True, rate=RATE)
    app = Application.objects.create(
        name="Client", client_type="public", authorization_grant_type="authorization-code"
    )

    def token(user, raw: str, *, expires: dt.datetime) -> str:
        # One token per door: a token is valid only at the resource it was issued for.
        for door, resource in (
            ("api", "http://testserver/api/v1/"),
            ("mcp", "http://testserver/mcp"),
        ):
            stored = AccessToken(
                user=user, application=app, scope="datasets", expires=expires, resource=[resource]
            )
            set_token_value(stored, f"gwo_{raw}{door}")
            stored.save()
        return f"gwo_{raw}"

    later = NOON + dt.timedelta(hours=1)
    tokens = {
        "user grant": token(alice, "alicetoken", expires=later),
        "group grant": token(bob, "bobtoken", expires=later),
        "expired token": token(bob, "oldtoken", expires=NOON - dt.timedelta(minutes=1)),
    }
    budgets = {name: issued.key.key_id for name, issued in keys.items()}
    budgets.update({"user grant": f"u:{alice.pk}", "group grant": f"u:{bob.pk}"})
    staff = User.objects.create_superuser("admin", "admin@example.com", "x")
    admin = Client()
    admin.force_login(staff)
    return {"keys": keys, "tokens": tokens, "budgets": budgets, "admin": admin}


def _client(world, credential: str, door: str) -> Client:
    if credential in world["keys"]:
        return Client(headers={"Authorization": f"Bearer {world['keys'][credential].raw_key}"})
    if credential in world["tokens"]:
        suffix = "mcp" if door.startswith("mcp") else "api"
        return Client(headers={"Authorization": f"Bearer {world['tokens'][credential]}{suffix}"})
    return Client()


def _regions(text: str) -> str:
    seen = {region for region in REGIONS if region in text}
    if seen == set(REGIONS):
        return "all"
    if not seen:
        return "hidden"
    return "+".join(sorted(seen))


def _check_personal_data(text: str) -> None:
    for n in range(1, 10):
        assert RAW_EMAIL.format(n=n) not in text
        assert HIDDEN_NOTE.format(n=n) not in text
    assert "person1.secret" not in text  # not even the raw local part


def _get(client: Client, url: str) -> tuple[int, str]:
    response = client.get(url)
    content = b"".join(response.streaming_content) if response.streaming else response.content
    text = content.decode()
    _check_personal_data(text)
    return response.status_code, text


def _rest(url: str):
    def observe(client: Client) -> tuple[str, int]:
        status, text = _get(client, url)
        if status == 401:
            return "401", 1
        if status == 404:
            assert json.loads(text)["error"]["code"] == "dataset_not_found"
            return "hidden", 1
        assert status == 200, text
        return _regions(text), 1

    return observe


def _list(client: Client) -> tuple[str, int]:
    status, text = _get(client, "/api/v1/datasets/")
    if status == 401:
        return "401", 1
    listed = {entry["slug"]: entry for entry in json.loads(text)["results"]}
    if "sales" not in listed:
        return "hidden", 1
    counts = {9: "all", 3: "Europa"}
    return counts.get(listed["sales"]["row_count"], str(listed["sales"]["row_count"])), 1


def _row_by_key(client: Client) -> tuple[str, int]:
    seen = []
    for region, numbers in REGIONS.items():
        status, text = _get(client, f"/api/v1/datasets/sales/rows/{numbers[0]}/")
        if status == 401:
            return "401", 1
        if status == 200:
            assert json.loads(text)["region"] == region
            seen.append(region)
        else:
            assert status == 404, text
    return _regions(" ".join(seen)), len(REGIONS)


def _schema(public: bool):
    def observe(client: Client, settings) -> tuple[str, int]:
        settings.GATEWAY_SCHEMA_PUBLIC = public
        status, text = _get(client, "/openapi.json")
        if status == 401:
            return "401", 1
        assert status == 200, text
        seen = _regions(text)
        if seen == "hidden" and "/api/v1/datasets/sales/" in text:
            return "withheld", 1
        return seen, 1

    return observe


def _connect(world, credential: str, settings) -> tuple[str, int]:
    if credential not in world["keys"]:
        return "n/a", 0
    settings.GATEWAY_SCHEMA_PUBLIC = False  # the page then shows the document to paste
    key_id = world["keys"][credential].key.key_id
    status, text = _get(world["admin"], f"/admin/connect/?key={key_id}")
    assert status == 200
    return _regions(text[text.index('id="content-main"') :]), 0


def _mcp(tool: str, arguments: dict, calls: int = 1):
    def observe(client: Client) -> tuple[str, int]:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
        response = client.post("/mcp", json.dumps(body), content_type="application/json")
        text = response.content.decode()
        _check_personal_data(text)
        if response.status_code == 401:
            return "401", calls
        result = response.json()["result"]
        if result["isError"]:
            # An unknown dataset, or a row outside the caller's rows: the same 404 either way.
            assert result["structuredContent"]["error"]["code"] in (
                "dataset_not_found",
                "not_found",
            )
            return "hidden", calls
        if tool == "list_datasets":
            listed = {entry["slug"]: entry for entry in result["structuredContent"]["results"]}
            if "sales" not in listed:
                return "hidden", calls
            return {9: "all", 3: "Europa"}.get(listed["sales"]["row_count"], "?"), calls
        if tool == "search":
            ids = {hit["id"] for hit in result["structuredContent"]["results"]}
            return ("hidden" if not ids & SALES_IDS else arguments["query"]), calls
        return _regions(json.dumps(result["structuredContent"])), calls

    return observe


def _mcp_get_rows(client: Client) -> tuple[str, int]:
    seen = []
    for region, numbers in REGIONS.items():
        verdict, _ = _mcp("get_row", {"dataset": "sales", "key": str(numbers[0])})(client)
        if verdict == "401":
            return "401", 1
        if verdict == region:
            seen.append(region)
    return (_regions(" ".join(seen)) if seen else "hidden"), len(REGIONS)


def _mcp_search(client: Client) -> tuple[str, int]:
    seen = []
    for region in REGIONS:
        verdict, _ = _mcp("search", {"query": region})(client)
        if verdict == "401":
            return "401", 1
        if verdict == region:
            seen.append(region)
    return (_regions(" ".join(seen)) if seen else "hidden"), len(REGIONS)


def _mcp_fetch(client: Client) -> tuple[str, int]:
    seen = []
    for region, numbers in REGIONS.items():
        verdict, _ = _mcp("fetch", {"id": f"sales:{numbers[0]}"})(client)
        if verdict == "401":
            return "401", 1
        if verdict == region:
            seen.append(region)
    return (_regions(" ".join(seen)) if seen else "hidden"), len(REGIONS)


SALES_IDS = {f"sales:{n}" for numbers in REGIONS.values() for n in numbers}
AGGREGATE = "group_by=region&metrics=count,sum:revenue,count_distinct:email"
OBSERVERS = {
    "list": _list,
    "describe": _rest("/api/v1/datasets/sales/"),
    "rows": _rest("/api/v1/datasets/sales/rows/?limit=100"),
    "row by key": _row_by_key,
    "aggregate": _rest(f"/api/v1/datasets/sales/aggregate/?{AGGREGATE}"),
    "csv": _rest("/api/v1/datasets/sales/rows/?format=csv&limit=100"),
    "mcp list_datasets": _mcp("list_datasets", {}),
    "mcp describe_dataset": _mcp("describe_dataset", {"dataset": "sales"}),
    "mcp query_rows": _mcp("query_rows", {"dataset": "sales", "limit": 100}),
    "mcp get_row": _mcp_get_rows,
    "mcp aggregate": _mcp(
        "aggregate",
        {"dataset": "sales", "group_by": ["region"], "metrics": ["count", "sum:revenue"]},
    ),
    "mcp search": _mcp_search,
    "mcp fetch": _mcp_fetch,
}


def _spent(budget: str) -> int:
    """What django-ratelimit reads on the budget's counter (the throttle's own cache key)."""
    found = get_usage(
        RequestFactory().get("/"),
        group=GROUP,
        key=lambda group, request: budget,
        rate=RATE,
        increment=False,
    )
    return found["count"]


@pytest.mark.parametrize("door", sorted(MATRIX))
def test_every_door_answers_each_credential_by_the_one_policy(world, settings, door):
    observed, spends = {}, {}
    for credential in CREDENTIALS:
        budget = world["budgets"].get(credential)
        before = _spent(budget) if budget else 0
        if door == "connect page":
            observed[credential], calls = _connect(world, credential, settings)
        elif door.startswith("openapi"):
            client = _client(world, credential, door)
            observed[credential], calls = _schema(door == "openapi public")(client, settings)
        else:
            observed[credential], calls = OBSERVERS[door](_client(world, credential, door))
        if budget and observed[credential] != "401":
            # Every call of this credential spent its own budget, by the door's rule.
            spends[credential] = (_spent(budget) - before, calls * SPENDS[door])
    assert observed == dict(zip(CREDENTIALS, MATRIX[door], strict=True))
    assert {name: spent for name, (spent, _) in spends.items()} == {
        name: expected for name, (_, expected) in spends.items()
    }


def test_the_matrix_covers_every_door_and_credential():
    assert set(OBSERVERS) | {"openapi public", "openapi private", "connect page"} == set(MATRIX)
    assert all(len(row) == len(CREDENTIALS) for row in MATRIX.values())
