"""A change made by another process reaches a running server on the very next request.

On the embedded default (runserver, SQLite, no shared cache) and in production (gunicorn with two
workers, PostgreSQL and Redis): a new dataset, a replaced one, a column made hidden, a new key, a
revoked key and an admin-style column edit, each from a `manage.py` process, each seen by the
next request.
"""

from __future__ import annotations

import contextlib
import json

import pytest

from tests.servers import REDIS_URL, get, manage, postgres_database, running, server_environment

pytestmark = pytest.mark.system

# Enough requests to reach both gunicorn workers in practice, and none of them may be stale.
REQUESTS_AFTER_EACH_CHANGE = 6

COLUMN_EDIT = """
from django.db import transaction
from datasets.models import Column
with transaction.atomic():
    column = Column.objects.get(dataset__slug="tips", name="day")
    column.description = "Day of the week the bill was paid."
    column.save()
"""


@contextlib.contextmanager
def _embedded(tmp_path):
    environment = server_environment(tmp_path / "data")
    manage(environment, "migrate", "--noinput")
    with running(environment) as port:
        yield environment, port


@contextlib.contextmanager
def _production(tmp_path):
    with postgres_database() as database_url:
        environment = server_environment(
            tmp_path / "data", DATABASE_URL=database_url, REDIS_URL=REDIS_URL
        )
        manage(environment, "migrate", "--noinput")
        with running(environment, gunicorn_workers=2) as port:
            yield environment, port


@pytest.fixture(params=["embedded", "production"])
def gateway(request, tmp_path):
    if request.param == "production":
        request.getfixturevalue("postgres")
        request.getfixturevalue("redis")
        configuration = _production
    else:
        configuration = _embedded
    with configuration(tmp_path) as (environment, port):
        yield environment, port


def _tips(path, *, bills: int):
    lines = ["bill_id,day,total"] + [f"{n},{'Sat' if n % 2 else 'Sun'},{n}.5" for n in range(bills)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _seen(port: int, key: str, check) -> None:
    for _ in range(REQUESTS_AFTER_EACH_CHANGE):
        listed = get(port, "/api/v1/datasets/", key)
        described = get(port, "/api/v1/datasets/tips/", key)
        schema = get(port, "/openapi.json")
        assert listed[0] == 200, listed
        check(listed[2], described, json.dumps(schema[2]))


def test_every_change_reaches_the_server_on_the_next_request(gateway, tmp_path):
    environment, port = gateway
    key = manage(environment, "issue_key", "reader", "--all").splitlines()[-1]
    # The new key is accepted at once, and the server has the catalog and schema in its caches.
    assert get(port, "/api/v1/datasets/", key)[0] == 200
    assert get(port, "/openapi.json")[0] == 200

    manage(environment, "import_dataset", _tips(tmp_path / "tips.csv", bills=10), "--slug", "tips")

    def new_dataset(listed, described, schema):
        assert "tips" in [dataset["slug"] for dataset in listed["results"]]
        assert described[0] == 200 and described[2]["row_count"] == 10
        assert "list_tips_rows" in schema

    _seen(port, key, new_dataset)

    manage(
        environment,
        *("import_dataset", _tips(tmp_path / "tips2.csv", bills=20), "--slug", "tips"),
        *("--replace", "--description", "Restaurant bills, replaced."),
    )

    def replaced(listed, described, schema):
        assert described[2]["row_count"] == 20
        assert described[2]["description"] == "Restaurant bills, replaced."
        assert "Restaurant bills, replaced." in schema

    _seen(port, key, replaced)

    manage(
        environment,
        *("import_dataset", _tips(tmp_path / "tips3.csv", bills=20), "--slug", "tips"),
        *("--replace", "--pii", "total=hide"),
    )

    def hidden(listed, described, schema):
        assert "total" not in {column["name"] for column in described[2]["columns"]}
        rows = get(port, "/api/v1/datasets/tips/rows/?limit=3", key)
        assert rows[0] == 200 and rows[2]["results"]
        assert all("total" not in row for row in rows[2]["results"])

    _seen(port, key, hidden)

    manage(environment, "shell", "-c", COLUMN_EDIT)

    def column_edited(listed, described, schema):
        columns = {column["name"]: column for column in described[2]["columns"]}
        assert columns["day"]["description"] == "Day of the week the bill was paid."
        assert "Day of the week the bill was paid." in schema

    _seen(port, key, column_edited)

    manage(environment, "revoke_key", key.split("_")[1])
    for _ in range(REQUESTS_AFTER_EACH_CHANGE):
        status, _, body = get(port, "/api/v1/datasets/", key)
        assert status == 401 and "revoked" in body["error"]["message"]
