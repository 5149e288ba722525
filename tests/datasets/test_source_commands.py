"""add_source, discover_source and add_dataset: scriptable, clear errors, non-zero exit on failure."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from datasets.models import Dataset, Source
from tests.datasets.fake_mysql import FakeMySQLServer
from tests.services import POSTGRES_URL, sql_run

pytestmark = pytest.mark.django_db

PG = "postgresql://postgres@127.0.0.1:5432/test"
TABLE = "gw_t_srccmd_orders"
VIEW = "gw_t_srccmd_orders_v"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_orders(postgres):
    drop = [f"DROP VIEW IF EXISTS {VIEW}", f"DROP TABLE IF EXISTS {TABLE}"]
    sql_run(
        POSTGRES_URL,
        drop
        + [
            f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, email text, amount numeric(8, 2))",
            f"INSERT INTO {TABLE} VALUES (1, 'a@example.com', 5), (2, 'b@example.com', 7)",
            f"CREATE VIEW {VIEW} AS SELECT id, amount FROM {TABLE}",
        ],
    )
    yield
    sql_run(POSTGRES_URL, drop)


@pytest.fixture
def sqlite_file(tmp_path):
    path = tmp_path / "shop.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, phone TEXT);
        INSERT INTO customers VALUES (1, 'Ann', 'ann@example.com', '555-1'), (2, 'Bob', 'bob@example.com', '555-2');
        CREATE VIEW customer_names AS SELECT id, name FROM customers;
        """
    )
    db.commit()
    db.close()
    return path


def _call(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_add_source_tests_the_connection_and_stores_it(pg_orders):
    output = _call("add_source", "shop", "postgresql://postgres:cmd-pw@127.0.0.1:5432/test")
    assert "Added source 'shop'" in output and "cmd-pw" not in output
    source = Source.objects.get(name="shop")
    assert source.url == PG and source.password == "cmd-pw"


def test_add_source_sets_the_statement_timeout(sqlite_file):
    _call("add_source", "lite", f"sqlite:///{sqlite_file}", "--timeout", "30")
    assert Source.objects.get(name="lite").statement_timeout == 30


@pytest.mark.parametrize(
    "url, reason",
    [
        ("postgresql://postgres:cmd-pw@127.0.0.1:5432/gw_t_srccmd_no_db", "does not exist"),
        ("postgresql://postgres:cmd-pw@127.0.0.1:1/test", "Connection refused"),
        ("postgresql://postgres:cmd-pw@no-such-host.invalid/test", "no-such-host.invalid"),
        ("ftp://example.com/file", "Unsupported database"),
    ],
)
def test_add_source_refuses_an_unreachable_source_with_the_reason(postgres, url, reason):
    with pytest.raises(CommandError) as caught:
        _call("add_source", "bad", url)
    assert reason in str(caught.value)
    assert "cmd-pw" not in str(caught.value)
    assert not Source.objects.exists()


def test_add_source_failure_exits_non_zero_with_a_message_and_no_traceback(tmp_path):
    missing = tmp_path / "missing.db"
    env = {"GATEWAY_DATA_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    assert manage("migrate", "--noinput").returncode == 0
    result = manage("add_source", "bad", f"sqlite:///{missing}")
    assert result.returncode != 0
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_discover_source_prints_tables_and_views_one_a_line(pg_orders):
    _call("add_source", "shop", PG)
    lines = _call("discover_source", "shop").splitlines()
    assert f"public.{TABLE}\ttable" in lines
    assert f"public.{VIEW}\tview" in lines
    assert not Dataset.objects.exists()


def test_discover_source_on_sqlite(sqlite_file):
    _call("add_source", "lite", f"sqlite:///{sqlite_file}")
    assert _call("discover_source", "lite") == "main.customer_names\tview\nmain.customers\ttable\n"


def test_discover_unknown_source_names_the_known_ones(sqlite_file):
    _call("add_source", "lite", f"sqlite:///{sqlite_file}")
    with pytest.raises(CommandError, match="Unknown source 'nope'. Sources: lite."):
        _call("discover_source", "nope")


def test_discover_unreachable_source_is_a_clear_error():
    Source.objects.create(name="closed", kind="mysql", url="mysql://root@127.0.0.1:1/test")
    with pytest.raises(CommandError, match="Cannot connect to source 'closed'"):
        _call("discover_source", "closed")


def test_add_dataset_with_pii(sqlite_file):
    _call("add_source", "lite", f"sqlite:///{sqlite_file}")
    output = _call(
        "add_dataset",
        "--source=lite",
        "--table=customers",
        "--slug=customers",
        "--pii",
        "email=mask",
        "phone=hide",
        "--pii",
        "name=hash",
        "--title=Customers",
        "--description=Our customers.",
    )
    assert "Registered dataset 'customers'" in output and "primary key id" in output
    dataset = Dataset.objects.get(slug="customers")
    assert (dataset.title, dataset.description, dataset.row_count) == (
        "Customers",
        "Our customers.",
        2,
    )
    pii = dict(dataset.columns.values_list("name", "pii"))
    assert pii == {"id": "none", "name": "hash", "email": "mask", "phone": "hide"}


def test_add_dataset_from_a_postgresql_view_with_a_primary_key(pg_orders):
    _call("add_source", "shop", PG)
    _call(
        "add_dataset",
        "--source",
        "shop",
        "--table",
        VIEW,
        "--schema",
        "public",
        "--slug",
        "orders_view",
        "--primary-key",
        "id",
    )
    dataset = Dataset.objects.get(slug="orders_view")
    assert (dataset.table, dataset.primary_key, dataset.row_count) == (VIEW, "id", 2)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--table=custmers", "--slug=c"], "Did you mean 'customers'?"),
        (["--table=customers", "--slug=c", "--primary-key=nope"], "Unknown primary key column"),
        (["--table=customers", "--slug=c", "--pii", "email=blur"], "Invalid --pii 'email=blur'"),
        (["--table=customers", "--slug=c", "--pii", "nope=mask"], "Unknown column 'nope'"),
        (["--table=customers", "--slug=Customers"], "Invalid slug"),
    ],
)
def test_add_dataset_errors_are_clear(sqlite_file, arguments, message):
    _call("add_source", "lite", f"sqlite:///{sqlite_file}")
    with pytest.raises(CommandError) as caught:
        _call("add_dataset", "--source=lite", *arguments)
    assert message in str(caught.value)
    assert not Dataset.objects.exists()


def test_add_dataset_refuses_a_duplicate_slug(sqlite_file):
    _call("add_source", "lite", f"sqlite:///{sqlite_file}")
    _call("add_dataset", "--source=lite", "--table=customers", "--slug=customers")
    with pytest.raises(CommandError, match="already exists"):
        _call("add_dataset", "--source=lite", "--table=customer_names", "--slug=customers")


def test_add_source_refuses_gateways_data_directory_with_the_reason(settings):
    own = settings.GATEWAY_DATA_DIR / "gateway.sqlite3"
    sqlite3.connect(own).close()
    with pytest.raises(CommandError, match="inside Gateway's data directory"):
        _call("add_source", "own", f"sqlite:///{own}")
    assert not Source.objects.exists()


@pytest.mark.parametrize(
    "url, option",
    [
        ("mysql://root@127.0.0.1:3306/test?local_infile=1", "local_infile"),
        ("postgresql://postgres@127.0.0.1:5432/test?options=-c%20statement_timeout%3D0", "options"),
    ],
)
def test_add_source_refuses_a_driver_option_by_name(url, option):
    with pytest.raises(CommandError, match=f"Option '{option}' is not allowed"):
        _call("add_source", "bad", url)
    assert not Source.objects.exists()


def test_add_source_stores_a_query_password_encrypted(pg_orders):
    output = _call("add_source", "shop", f"{PG}?sslmode=disable&password=cmd-query-pw")
    assert "cmd-query-pw" not in output
    source = Source.objects.get(name="shop")
    assert (source.url, source.password) == (f"{PG}?sslmode=disable", "cmd-query-pw")


def test_add_source_against_a_rogue_mysql_server_sends_no_file(tmp_path):
    secret = tmp_path / "environ"
    secret.write_text("GATEWAY_SECRET_KEY=command-must-not-send-this\n")
    with FakeMySQLServer(str(secret)) as server, pytest.raises(CommandError) as caught:
        _call("add_source", "rogue", f"mysql://root@127.0.0.1:{server.port}/test")
    assert "asked to read a file from Gateway's machine" in str(caught.value)
    assert server.file_requests == 1 and server.received_after_request == b""
    assert not Source.objects.exists()


def test_discover_source_refuses_a_stored_source_inside_the_data_directory(settings):
    own = settings.GATEWAY_DATA_DIR / "gateway.sqlite3"
    sqlite3.connect(own).close()
    Source.objects.create(name="own", kind="sqlite", url=f"sqlite:///{own}")
    with pytest.raises(CommandError, match="inside Gateway's data directory"):
        _call("discover_source", "own")
    with pytest.raises(CommandError, match="inside Gateway's data directory"):
        _call("add_dataset", "--source", "own", "--table", "x", "--slug", "x")
