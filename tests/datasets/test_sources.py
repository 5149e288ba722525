"""Foreign SQL sources against real PostgreSQL, MariaDB and SQLite files: add, test, discover, register."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy as sa
from django.db import connection as django_connection

from datasets.engine.connections import connect
from datasets.models import Column, Dataset, Source
from datasets.selectors import source_url
from datasets.sources import (
    SourceError,
    _scrub,
    column_type,
    dataset_register,
    dataset_statistics_refresh,
    source_create,
    source_discover,
    source_location_check,
    source_location_parse,
    source_test,
    source_update,
    url_without_password,
)
from tests.datasets.fake_mysql import LOCAL_FILES, FakeMySQLServer
from tests.servers import ROOT, manage, postgres_database, server_environment
from tests.services import MYSQL_URL, POSTGRES_URL, sql_run

pytestmark = pytest.mark.django_db

PG = "postgresql://postgres@127.0.0.1:5432/test"
MY = "mysql://root@127.0.0.1:3306/test"
TABLE = "gw_t_src_orders"
VIEW = "gw_t_src_orders_v"

PG_DDL = [
    f"""CREATE TABLE {TABLE} (
        id integer PRIMARY KEY, customer text NOT NULL, email varchar(200), region varchar(10),
        amount numeric(10, 2), quantity bigint, paid boolean, ordered_on date,
        created_at timestamp, notes jsonb, "Limit" integer)""",
    f"""INSERT INTO {TABLE} VALUES
        (1, 'Ann', 'ann@example.com', 'EU', 10.50, 1, true, '2024-01-05', '2024-01-05 10:00:00', '{{}}', 1),
        (2, 'Bob', 'bob@example.com', 'US', 20.00, 3, false, '2024-04-10', '2024-04-10 11:30:00', NULL, 2),
        (3, 'Cid', 'cid@example.com', 'EU', 7.25, 2, true, '2024-06-30', '2024-06-30 23:59:59', NULL, 3)""",
    f"CREATE VIEW {VIEW} AS SELECT id, customer, region, amount, ordered_on FROM {TABLE}",
]
PG_DROP = [f"DROP VIEW IF EXISTS {VIEW}", f"DROP TABLE IF EXISTS {TABLE}"]

MY_DDL = [
    f"""CREATE TABLE {TABLE} (
        id int PRIMARY KEY, customer varchar(50) NOT NULL, email varchar(200), region varchar(10),
        amount decimal(10, 2), quantity bigint, paid tinyint(1), ordered_on date,
        created_at datetime, picture blob, `Limit` int)""",
    f"""INSERT INTO {TABLE} VALUES
        (1, 'Ann', 'ann@example.com', 'EU', 10.50, 1, 1, '2024-01-05', '2024-01-05 10:00:00', NULL, 1),
        (2, 'Bob', 'bob@example.com', 'US', 20.00, 3, 0, '2024-04-10', '2024-04-10 11:30:00', NULL, 2),
        (3, 'Cid', 'cid@example.com', 'EU', 7.25, 2, 1, '2024-06-30', '2024-06-30 23:59:59', NULL, 3)""",
    f"CREATE VIEW {VIEW} AS SELECT id, customer, region, amount, ordered_on FROM {TABLE}",
]
MY_DROP = PG_DROP


@pytest.fixture
def pg_orders(postgres):
    sql_run(POSTGRES_URL, PG_DROP + PG_DDL)
    yield
    sql_run(POSTGRES_URL, PG_DROP)


@pytest.fixture
def my_orders(mysql):
    sql_run(MYSQL_URL, MY_DROP + MY_DDL)
    yield
    sql_run(MYSQL_URL, MY_DROP)


@pytest.fixture
def sqlite_file(tmp_path):
    path = tmp_path / "shop.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY, customer TEXT NOT NULL, region VARCHAR(10), amount REAL,
            price NUMERIC, paid BOOLEAN, ordered_on DATE, created_at DATETIME, raw BLOB, untyped);
        INSERT INTO orders VALUES
            (1, 'Ann', 'EU', 10.5, 10.5, 1, '2024-01-05', '2024-01-05 10:00:00', x'00', 'a'),
            (2, 'Bob', 'US', 20.0, 20, 0, '2024-04-10', '2024-04-10 11:30:00', NULL, 'b'),
            (3, 'Cid', 'EU', 7.25, 7.25, 1, '2024-06-30', '2024-06-30 23:59:59', NULL, 'c');
        CREATE TABLE lines (order_id INTEGER, line INTEGER, sku TEXT, PRIMARY KEY (order_id, line));
        CREATE VIEW orders_v AS SELECT id, customer, amount * 2 AS double_amount FROM orders;
        """
    )
    db.commit()
    db.close()
    return path


def _columns(dataset: Dataset) -> dict[str, Column]:
    return {column.name: column for column in dataset.columns.order_by("position")}


# -- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, kind, stored, password",
    [
        (
            "postgresql://reader:s3cret@db.example:5432/shop",
            "postgresql",
            "postgresql://reader@db.example:5432/shop",
            "s3cret",
        ),
        (
            "postgresql+psycopg://reader:p%40ss@db.example/shop",
            "postgresql",
            "postgresql+psycopg://reader@db.example/shop",
            "p@ss",
        ),
        ("mysql://root@db.example:3306/shop", "mysql", "mysql://root@db.example:3306/shop", ""),
        ("mariadb://u:pw@db.example/shop", "mysql", "mariadb://u@db.example/shop", "pw"),
        ("sqlite:////srv/data/shop.db", "sqlite", "sqlite:////srv/data/shop.db", ""),
    ],
)
def test_url_is_split_into_url_without_password_and_password(url, kind, stored, password):
    location = source_location_parse(url=url)
    assert (location.kind, location.url, location.password) == (kind, stored, password)


@pytest.mark.parametrize(
    "url, message",
    [
        ("", "Give a connection URL"),
        ("not a url", "Not a database URL"),
        ("oracle://u:topsecret@host/db", "Unsupported database 'oracle'"),
        ("mysql://root@127.0.0.1:3306", "Add the database name"),
        ("postgresql:///test", "Add the host"),
        ("sqlite://", "A SQLite source is a file"),
    ],
)
def test_bad_url_is_refused_with_a_clear_message(url, message):
    with pytest.raises(SourceError) as caught:
        source_location_parse(url=url)
    assert message in caught.value.message
    assert "topsecret" not in caught.value.message


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u:pw@host/db", "postgresql://u@host/db"),
        ("postgresql://u:p@ss@host:5432/db", "postgresql://u@host:5432/db"),
        ("postgresql://u:pw@host:notaport/db", "postgresql://u@host:notaport/db"),
        ("mysql://u@host:3306/db", "mysql://u@host:3306/db"),
        ("postgresql://host:5432/db", "postgresql://host:5432/db"),
        ("sqlite:////srv/shop.db", "sqlite:////srv/shop.db"),
    ],
)
def test_url_without_password_even_when_the_url_does_not_parse(url, expected):
    assert url_without_password(url) == expected


def test_unencoded_at_sign_in_the_password_is_refused_without_storing_part_of_it():
    with pytest.raises(SourceError, match="%40"):
        source_location_parse(url="postgresql://u:p@ss@host/db")


def test_relative_sqlite_path_is_stored_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    location = source_location_parse(url="sqlite:///shop.db")
    assert location.url == f"sqlite:///{tmp_path / 'shop.db'}"


# -- Adding and testing --------------------------------------------------------------------------


def test_source_create_stores_the_password_encrypted_apart_from_the_url(postgres):
    source = source_create(name="shop", url="postgresql://postgres:Hunter2-pw@127.0.0.1:5432/test")
    assert source.kind == "postgresql"
    assert source.url == "postgresql://postgres@127.0.0.1:5432/test"
    with django_connection.cursor() as cursor:
        cursor.execute(
            "SELECT url, password_encrypted FROM datasets_source WHERE id = %s", [source.pk]
        )
        url, encrypted = cursor.fetchone()
    assert "Hunter2-pw" not in url
    assert encrypted and "Hunter2-pw" not in encrypted
    assert Source.objects.get().password == "Hunter2-pw"
    assert (
        source_url(Source.objects.get()) == "postgresql://postgres:Hunter2-pw@127.0.0.1:5432/test"
    )


@pytest.mark.parametrize(
    "url, reason",
    [
        ("postgresql://postgres:pw-x1@127.0.0.1:5432/gw_t_src_no_such_db", "does not exist"),
        ("postgresql://postgres:pw-x1@127.0.0.1:1/test", "Connection refused"),
        ("postgresql://postgres:pw-x1@no-such-host.invalid:5432/test", "no-such-host.invalid"),
    ],
)
def test_unreachable_postgresql_source_is_refused_with_the_reason(postgres, url, reason):
    with pytest.raises(SourceError) as caught:
        source_create(name="bad", url=url)
    message = caught.value.message
    assert message.startswith("Cannot connect to the source (postgresql at ")
    assert reason in message
    assert "pw-x1" not in message
    assert not Source.objects.exists()


@pytest.mark.parametrize(
    "url, reason",
    [
        ("mysql://root@127.0.0.1:3306/gw_t_src_no_such_db", "Unknown database"),
        ("mysql://root:pw-x1@127.0.0.1:3306/test", "Access denied"),
        ("mysql://root@127.0.0.1:1/test", "Connection refused"),
    ],
)
def test_unreachable_mysql_source_is_refused_with_the_reason(mysql, url, reason):
    with pytest.raises(SourceError) as caught:
        source_create(name="bad", url=url)
    assert reason in caught.value.message
    assert "pw-x1" not in caught.value.message
    assert not Source.objects.exists()


def test_missing_sqlite_file_is_refused(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        source_create(name="bad", url=f"sqlite:///{tmp_path / 'missing.db'}")


def test_duplicate_source_name_is_refused(sqlite_file):
    source_create(name="shop", url=f"sqlite:///{sqlite_file}")
    with pytest.raises(SourceError, match="already exists"):
        source_create(name="shop", url=f"sqlite:///{sqlite_file}")


@pytest.mark.parametrize("timeout", [0, 601])
def test_statement_timeout_out_of_range_is_refused(sqlite_file, timeout):
    with pytest.raises(SourceError, match="1 to 600"):
        source_create(name="shop", url=f"sqlite:///{sqlite_file}", statement_timeout=timeout)


def test_source_test_on_a_closed_port_raises_a_clear_error():
    source = Source.objects.create(name="closed", kind="postgresql", url=PG.replace("5432", "1"))
    source.password = "pw-closed"
    source.save()
    with pytest.raises(SourceError) as caught:
        source_test(source=source)
    message = caught.value.message
    assert "source 'closed'" in message and "127.0.0.1:1" in message
    assert "Connection refused" in message
    assert "pw-closed" not in message


def test_source_test_passes_for_a_reachable_source(sqlite_file):
    source = source_create(name="shop", url=f"sqlite:///{sqlite_file}")
    source_test(source=source)


def test_source_update_keeps_the_password_when_none_is_given(postgres):
    source = source_create(name="shop", url="postgresql://postgres:keep-me@127.0.0.1:5432/test")
    source_update(source=source, statement_timeout=20)
    source.refresh_from_db()
    assert (source.password, source.statement_timeout) == ("keep-me", 20)


def test_source_update_refuses_an_unreachable_url_and_keeps_the_old_one(postgres):
    source = source_create(name="shop", url=PG)
    with pytest.raises(SourceError, match="does not exist"):
        source_update(source=source, url=PG.replace("/test", "/gw_t_src_no_such_db"))
    source.refresh_from_db()
    assert source.url == PG


# -- Discovery -----------------------------------------------------------------------------------


def test_discover_lists_postgresql_tables_and_views(pg_orders):
    source = source_create(name="pg", url=PG)
    found = {(t.schema, t.name): t.kind for t in source_discover(source=source)}
    assert found[("public", TABLE)] == "table"
    assert found[("public", VIEW)] == "view"
    assert not any(schema in ("pg_catalog", "information_schema") for schema, _ in found)


def test_discover_lists_mysql_tables_and_views(my_orders):
    source = source_create(name="my", url=MY)
    found = {(t.schema, t.name): t.kind for t in source_discover(source=source)}
    assert found[("test", TABLE)] == "table"
    assert found[("test", VIEW)] == "view"


def test_discover_lists_sqlite_tables_and_views(sqlite_file):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    found = [(t.qualified_name, t.kind) for t in source_discover(source=source)]
    assert found == [("main.lines", "table"), ("main.orders", "table"), ("main.orders_v", "view")]


# -- Registration --------------------------------------------------------------------------------


def test_register_postgresql_table_introspects_columns_key_and_statistics(pg_orders):
    source = source_create(name="pg", url=PG)
    dataset = dataset_register(source=source, table=TABLE, slug="orders", pii={"email": "mask"})
    assert (dataset.table, dataset.schema_name, dataset.primary_key) == (TABLE, "", "id")
    assert dataset.title == "Gw t src orders"
    assert dataset.row_count == 3
    columns = _columns(dataset)
    assert {name: column.type for name, column in columns.items()} == {
        "id": "integer",
        "customer": "string",
        "email": "string",
        "region": "string",
        "amount": "number",
        "quantity": "integer",
        "paid": "boolean",
        "ordered_on": "date",
        "created_at": "datetime",
        "notes": "string",
        "limit_": "integer",
    }
    assert columns["limit_"].physical_name == "Limit"
    assert columns["email"].pii == "mask" and columns["email"].enum is None
    assert columns["customer"].searchable and not columns["amount"].searchable
    assert columns["customer"].exposed and columns["customer"].filterable
    assert columns["region"].enum == ["EU", "US"]
    assert columns["paid"].enum == [False, True]
    assert columns["id"].enum is None  # the primary key is not a category
    assert (columns["amount"].min_value, columns["amount"].max_value) == (7.25, 20.0)
    assert (columns["ordered_on"].min_value, columns["ordered_on"].max_value) == (
        "2024-01-05",
        "2024-06-30",
    )
    assert columns["created_at"].max_value == "2024-06-30T23:59:59"
    notes = columns["notes"]
    assert not notes.exposed and not notes.filterable and not notes.searchable
    assert "JSONB" in notes.description and "not supported" in notes.description


def test_register_postgresql_view_has_no_primary_key_unless_given(pg_orders):
    source = source_create(name="pg", url=PG)
    without = dataset_register(source=source, table=VIEW, slug="orders_view")
    assert without.primary_key == ""
    assert list(without.columns.values_list("name", flat=True)) == [
        "id",
        "customer",
        "region",
        "amount",
        "ordered_on",
    ]
    assert without.row_count == 3
    with_key = dataset_register(source=source, table=VIEW, slug="orders_view_2", primary_key="id")
    assert with_key.primary_key == "id"


def test_register_accepts_schema_qualified_name_as_printed_by_discover(pg_orders):
    source = source_create(name="pg", url=PG)
    dataset = dataset_register(source=source, table=f"public.{TABLE}", slug="orders")
    assert (dataset.table, dataset.schema_name) == (TABLE, "")


def test_register_mysql_table_and_view(my_orders):
    source = source_create(name="my", url=MY)
    dataset = dataset_register(source=source, table=TABLE, slug="orders")
    assert dataset.primary_key == "id" and dataset.row_count == 3
    columns = _columns(dataset)
    types = {name: column.type for name, column in columns.items()}
    assert types == {
        "id": "integer",
        "customer": "string",
        "email": "string",
        "region": "string",
        "amount": "number",
        "quantity": "integer",
        "paid": "integer",  # TINYINT(1): the driver returns 0 and 1
        "ordered_on": "date",
        "created_at": "datetime",
        "picture": "string",
        "limit_": "integer",
    }
    assert not columns["picture"].exposed and "BLOB" in columns["picture"].description
    assert columns["paid"].enum == [0, 1]
    assert columns["region"].enum == ["EU", "US"]
    assert (columns["amount"].min_value, columns["amount"].max_value) == (7.25, 20.0)
    assert columns["created_at"].min_value == "2024-01-05T10:00:00"

    view = dataset_register(source=source, table=VIEW, slug="orders_view", primary_key="id")
    assert view.primary_key == "id" and view.row_count == 3
    assert _columns(view)["ordered_on"].max_value == "2024-06-30"


def test_register_sqlite_table_and_view(sqlite_file):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    dataset = dataset_register(source=source, table="orders", slug="orders", title="Orders")
    columns = _columns(dataset)
    assert {name: column.type for name, column in columns.items()} == {
        "id": "integer",
        "customer": "string",
        "region": "string",
        "amount": "number",
        "price": "number",
        "paid": "boolean",
        "ordered_on": "date",
        "created_at": "datetime",
        "raw": "string",
        "untyped": "string",
    }
    assert dataset.primary_key == "id" and dataset.row_count == 3
    assert not columns["raw"].exposed
    assert columns["untyped"].exposed and columns["untyped"].enum == ["a", "b", "c"]
    assert columns["paid"].enum == [False, True]
    assert (columns["ordered_on"].min_value, columns["ordered_on"].max_value) == (
        "2024-01-05",
        "2024-06-30",
    )

    view = dataset_register(source=source, table="orders_v", slug="orders_view")
    assert view.primary_key == ""
    assert _columns(view)["double_amount"].type == "number"
    assert _columns(view)["double_amount"].max_value == 40.0


def test_composite_primary_key_is_not_used(sqlite_file):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    assert dataset_register(source=source, table="lines", slug="lines").primary_key == ""


def test_pii_accepts_physical_and_api_names(pg_orders):
    source = source_create(name="pg", url=PG)
    dataset = dataset_register(
        source=source, table=TABLE, slug="orders", pii={"Limit": "hide", "customer": "hash"}
    )
    columns = _columns(dataset)
    assert (columns["limit_"].pii, columns["customer"].pii) == ("hide", "hash")
    assert columns["customer"].enum is None and columns["limit_"].min_value is None


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"table": "nope", "slug": "x"}, "has no table or view 'nope'"),
        ({"table": "orderz", "slug": "x"}, "Did you mean 'orders'?"),
        ({"table": "orders", "slug": "x", "primary_key": "nope"}, "Unknown primary key column"),
        ({"table": "orders", "slug": "x", "pii": {"nope": "mask"}}, "Unknown column 'nope'"),
        ({"table": "orders", "slug": "x", "pii": {"customer": "blur"}}, "Unknown pii mode"),
        ({"table": "orders", "slug": "Bad-Slug"}, "Invalid slug"),
        ({"table": "orders", "slug": "x", "description": "d" * 301}, "at most 300"),
        ({"table": "orders", "slug": "x", "schema_name": "other"}, "single schema"),
    ],
)
def test_bad_registration_is_refused_with_a_clear_message(sqlite_file, arguments, message):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    with pytest.raises(SourceError) as caught:
        dataset_register(source=source, **arguments)
    assert message in caught.value.message
    assert not Dataset.objects.exists()


def test_duplicate_slug_is_refused(sqlite_file):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    dataset_register(source=source, table="orders", slug="orders")
    with pytest.raises(SourceError, match="slug 'orders' already exists"):
        dataset_register(source=source, table="orders_v", slug="orders")


def test_register_on_an_unreachable_source_is_refused():
    source = Source.objects.create(name="closed", kind="postgresql", url=PG.replace("5432", "1"))
    with pytest.raises(SourceError, match="Cannot connect to source 'closed'"):
        dataset_register(source=source, table="orders", slug="orders")


def test_unknown_postgresql_schema_is_refused(pg_orders):
    source = source_create(name="pg", url=PG)
    with pytest.raises(SourceError, match="no schema 'nowhere'"):
        dataset_register(source=source, table=TABLE, slug="orders", schema_name="nowhere")


# -- Statistics ----------------------------------------------------------------------------------


def test_statistics_refresh_follows_the_source(sqlite_file):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    dataset = dataset_register(source=source, table="orders", slug="orders")
    db = sqlite3.connect(sqlite_file)
    db.execute(
        "INSERT INTO orders VALUES (4, 'Dan', 'APAC', 99.0, 99, 0, '2025-02-01', '2025-02-01 08:00:00', NULL, 'd')"
    )
    db.commit()
    db.close()
    dataset_statistics_refresh(dataset=dataset)
    dataset.refresh_from_db()
    columns = _columns(dataset)
    assert dataset.row_count == 4
    assert columns["region"].enum == ["APAC", "EU", "US"]
    assert columns["ordered_on"].max_value == "2025-02-01"
    assert columns["amount"].max_value == 99.0


def test_enum_is_dropped_past_fifty_distinct_values(tmp_path):
    path = tmp_path / "many.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT, colour TEXT)")
    db.executemany(
        "INSERT INTO items VALUES (?, ?, ?)",
        [(i, f"code-{i}", ["red", "green"][i % 2]) for i in range(51)],
    )
    db.commit()
    db.close()
    source = source_create(name="many", url=f"sqlite:///{path}")
    columns = _columns(dataset_register(source=source, table="items", slug="items"))
    assert columns["code"].enum is None
    assert columns["colour"].enum == ["green", "red"]


def test_statistics_refresh_of_an_upload_is_refused():
    dataset = Dataset.objects.create(slug="upload", title="Upload")
    with pytest.raises(SourceError, match="uploaded file"):
        dataset_statistics_refresh(dataset=dataset)


@pytest.mark.parametrize(
    "sql_type, expected",
    [
        (sa.Integer(), "integer"),
        (sa.BigInteger(), "integer"),
        (sa.Numeric(10, 2), "number"),
        (sa.Float(), "number"),
        (sa.Boolean(), "boolean"),
        (sa.Date(), "date"),
        (sa.DateTime(), "datetime"),
        (sa.TIMESTAMP(timezone=True), "datetime"),
        (sa.String(20), "string"),
        (sa.Text(), "string"),
        (sa.Uuid(), "string"),
        (sa.JSON(), None),
        (sa.LargeBinary(), None),
        (sa.ARRAY(sa.Integer()), None),
        (sa.Time(), None),
    ],
)
def test_column_type_mapping(sql_type, expected):
    assert column_type(sql_type) == expected


@pytest.fixture
def pg_slow_view(postgres):
    drop = ["DROP VIEW IF EXISTS gw_t_src_slow_v"]
    # Every row sleeps 1.5 s: any statistic query outlives a 1-second statement timeout.
    sql_run(
        POSTGRES_URL,
        drop
        + [
            "CREATE VIEW gw_t_src_slow_v AS SELECT g AS id, 'x'::text AS label "
            "FROM generate_series(1, 3) g WHERE pg_sleep(1.5)::text = ''"
        ],
    )
    yield
    sql_run(POSTGRES_URL, drop)


def test_statistics_past_the_statement_timeout_are_left_empty(pg_slow_view):
    source = source_create(name="pg", url=PG, statement_timeout=1)
    dataset = dataset_register(source=source, table="gw_t_src_slow_v", slug="slow")
    columns = _columns(dataset)
    assert dataset.row_count is None
    assert columns["label"].enum is None and columns["id"].min_value is None
    assert [column.type for column in columns.values()] == ["integer", "string"]


# -- Driver options in the URL -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, stored",
    [
        (
            "postgresql://u@db.example:5432/shop?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem",
            "postgresql://u@db.example:5432/shop?sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fca.pem",
        ),
        (
            "postgresql://u@db.example/shop?connect_timeout=3&application_name=gateway",
            "postgresql://u@db.example/shop?application_name=gateway&connect_timeout=3",
        ),
        (
            "mysql://u@db.example/shop?charset=utf8mb4&ssl_ca=/etc/ca.pem&ssl_check_hostname=false",
            "mysql://u@db.example/shop?charset=utf8mb4&ssl_ca=%2Fetc%2Fca.pem&ssl_check_hostname=false",
        ),
    ],
)
def test_allowed_driver_options_are_kept(url, stored):
    assert source_location_parse(url=url).url == stored


@pytest.mark.parametrize(
    "url, option",
    [
        (
            "postgresql://u@db.example/shop?options=-c%20default_transaction_read_only%3Doff",
            "options",
        ),
        ("postgresql://u@db.example/shop?host=/var/run/postgresql", "host"),
        ("postgresql://u@db.example/shop?dbname=gateway", "dbname"),
        ("postgresql://u@db.example/shop?port=5433", "port"),
        ("postgresql://u@db.example/shop?service=gateway", "service"),
        ("postgresql://u@db.example/shop?passfile=/root/.pgpass", "passfile"),
        ("mysql://u@db.example/shop?local_infile=1", "local_infile"),
        ("mysql://u@db.example/shop?local_infile=0", "local_infile"),
        ("mysql://u@db.example/shop?client_flag=128", "client_flag"),
        ("mysql://u@db.example/shop?init_command=SET%20GLOBAL%20x%3D1", "init_command"),
        ("mysql://u@db.example/shop?read_default_file=/etc/mysql/my.cnf", "read_default_file"),
        ("mysql://u@db.example/shop?unix_socket=/run/mysqld/mysqld.sock", "unix_socket"),
        ("mariadb://u@db.example/shop?plugin=anything", "plugin"),
    ],
)
def test_driver_option_outside_the_allow_list_is_refused_by_name(url, option):
    with pytest.raises(SourceError) as caught:
        source_location_parse(url=url)
    assert f"Option {option!r} is not allowed" in caught.value.message
    assert "Allowed options: " in caught.value.message


def test_sqlite_url_takes_no_option(tmp_path):
    with pytest.raises(SourceError, match="'mode' is not allowed.*takes no option"):
        source_location_parse(url=f"sqlite:///{tmp_path / 'shop.db'}?mode=rw")


def test_sqlite_file_uri_is_refused(tmp_path):
    with pytest.raises(SourceError, match="not a file: URI"):
        source_location_parse(url=f"sqlite:///file:{tmp_path / 'shop.db'}")


@pytest.mark.parametrize(
    "url, message",
    [
        ("postgresql://u@db.example/shop?sslmode=bogus", "option 'sslmode': use one of disable"),
        ("postgresql://u@db.example/shop?connect_timeout=9999", "from 1 to 60"),
        ("mysql://u@db.example/shop?charset=utf8;DROP", "option 'charset'"),
        ("mysql://u@db.example/shop?charset=utf8&charset=latin1", "more than once"),
    ],
)
def test_invalid_option_value_is_refused_naming_the_option(url, message):
    with pytest.raises(SourceError, match=message):
        source_location_parse(url=url)


@pytest.mark.parametrize(
    "url, stored",
    [
        ("postgresql://u@db.example/shop?password=Qu3ry-pw", "postgresql://u@db.example/shop"),
        (
            "postgresql://u@db.example/shop?sslmode=require&password=Qu3ry-pw",
            "postgresql://u@db.example/shop?sslmode=require",
        ),
        (
            "mysql://u@db.example/shop?passwd=Qu3ry-pw&charset=utf8",
            "mysql://u@db.example/shop?charset=utf8",
        ),
        ("mysql://u:Qu3ry-pw@db.example/shop?password=Qu3ry-pw", "mysql://u@db.example/shop"),
    ],
)
def test_password_in_the_query_is_moved_out_of_the_url(url, stored):
    location = source_location_parse(url=url)
    assert (location.url, location.password) == (stored, "Qu3ry-pw")


def test_two_different_passwords_are_refused():
    with pytest.raises(SourceError, match="two different passwords"):
        source_location_parse(url="mysql://u:one@db.example/shop?password=two")


def test_query_password_is_stored_encrypted_never_in_the_url(postgres):
    source = source_create(
        name="shop", url="postgresql://postgres@127.0.0.1:5432/test?password=Qu3ry-Hunter2"
    )
    with django_connection.cursor() as cursor:
        cursor.execute(
            "SELECT url, password_encrypted FROM datasets_source WHERE id = %s", [source.pk]
        )
        url, encrypted = cursor.fetchone()
    assert url == PG
    assert "Qu3ry-Hunter2" not in encrypted
    assert Source.objects.get().password == "Qu3ry-Hunter2"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://u@h/db?password=pw&sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("postgresql://u@h/db?sslmode=require&password=pw", "postgresql://u@h/db?sslmode=require"),
        ("mysql://u@h/db?passwd=pw", "mysql://u@h/db"),
        ("postgresql://u:pw@h/db?password=pw", "postgresql://u@h/db"),
    ],
)
def test_url_without_password_drops_query_passwords(url, shown):
    assert url_without_password(url) == shown


# -- Gateway's own database and files ------------------------------------------------------------

OWN_PG = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": "gateway",
    "HOST": "localhost",
    "PORT": "",
}
OWN_MY = {
    "ENGINE": "django.db.backends.mysql",
    "NAME": "gateway",
    "HOST": "127.0.0.1",
    "PORT": "3306",
}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://reader@127.0.0.1/gateway",
        "postgresql://reader@localhost:5432/gateway",
        "postgres://reader@LOCALHOST./gateway",
        "postgresql://reader@[::1]:5432/gateway",
        "postgresql+psycopg://reader:pw@127.0.0.1:5432/gateway?sslmode=disable",
        "postgresql://reader@127.0.0.2/gateway",
        "postgresql://reader@0.0.0.0/gateway",
    ],
)
def test_url_of_gateways_own_postgresql_database_is_refused(url):
    with pytest.raises(SourceError) as caught:
        source_location_check(kind="postgresql", url=sa.make_url(url), databases=[OWN_PG])
    assert "is Gateway's own database" in caught.value.message


@pytest.mark.parametrize(
    "url, kind",
    [
        ("postgresql://reader@127.0.0.1/other", "postgresql"),
        ("postgresql://reader@127.0.0.1:5433/gateway", "postgresql"),
        ("postgresql://reader@db.example/gateway", "postgresql"),
        ("postgresql://reader@127.0.0.1/Gateway", "postgresql"),  # PostgreSQL names are exact
        ("mysql://reader@127.0.0.1/gateway", "mysql"),
    ],
)
def test_other_databases_are_not_gateways_own(url, kind):
    source_location_check(kind=kind, url=sa.make_url(url), databases=[OWN_PG])


@pytest.mark.parametrize(
    "url",
    [
        "mysql://r@localhost/gateway",
        "mariadb://r@127.0.0.1:3306/Gateway",
        "mysql://r@[::1]/gateway",
    ],
)
def test_url_of_gateways_own_mysql_database_is_refused(url):
    with pytest.raises(SourceError, match="is Gateway's own database"):
        source_location_check(kind="mysql", url=sa.make_url(url), databases=[OWN_MY])


def test_gateways_own_sqlite_file_is_refused_under_any_name(tmp_path):
    own = tmp_path / "own" / "gateway.sqlite3"
    own.parent.mkdir()
    sqlite3.connect(own).close()
    (tmp_path / "alias.db").symlink_to(own)
    os.link(own, tmp_path / "hard.db")
    databases = [{"ENGINE": "django.db.backends.sqlite3", "NAME": str(own)}]
    for path in [
        own,
        tmp_path / "alias.db",
        tmp_path / "own" / ".." / "own" / "gateway.sqlite3",
        tmp_path / "hard.db",
    ]:
        with pytest.raises(SourceError, match="is Gateway's own database"):
            source_location_check(
                kind="sqlite", url=sa.make_url(f"sqlite:///{path}"), databases=databases
            )
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    source_location_check(kind="sqlite", url=sa.make_url(f"sqlite:///{other}"), databases=databases)


def _add_source(environment: dict, url: str):
    return subprocess.run(
        [sys.executable, "manage.py", "add_source", "own", url],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_gateways_own_sqlite_database_is_refused_by_a_running_gateway(tmp_path):
    # Gateway on its default SQLite file, as `make run` has it, from another process.
    data_dir = tmp_path / "data"
    environment = server_environment(data_dir)
    manage(environment, "migrate", "--noinput")
    refused = _add_source(environment, f"sqlite:///{data_dir / 'gateway.sqlite3'}")
    assert refused.returncode != 0
    assert "is Gateway's own database" in refused.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.1"])
def test_gateways_own_postgresql_database_is_refused_under_any_host_name(postgres, tmp_path, host):
    # 127.1 is 127.0.0.1 to the driver but not to a URL comparison: the server's identity,
    # compared once connected, refuses it.
    with postgres_database() as database_url:
        environment = server_environment(tmp_path / "data", DATABASE_URL=database_url)
        manage(environment, "migrate", "--noinput")
        name = database_url.rsplit("/", 1)[1]
        refused = _add_source(environment, f"postgresql://postgres@{host}:5432/{name}")
        assert refused.returncode != 0
        assert "is Gateway's own database" in refused.stderr
        assert "sessions, users and keys" in refused.stderr
        # The same server's other databases remain sources.
        added = _add_source(environment, f"postgresql://postgres@{host}:5432/test")
        assert added.returncode == 0, added.stderr


def test_a_stored_source_on_gateways_own_database_fails_its_connection_test(postgres, tmp_path):
    with postgres_database() as database_url:
        environment = server_environment(tmp_path / "data", DATABASE_URL=database_url)
        manage(environment, "migrate", "--noinput")
        name = database_url.rsplit("/", 1)[1]
        check = f"""
from datasets.models import Source
from datasets.sources import SourceError, source_discover, source_test
source = Source.objects.create(name="own", kind="postgresql", url="postgresql://postgres@127.1:5432/{name}")
for action in (source_test, source_discover):
    try:
        action(source=source)
    except SourceError as error:
        assert "is Gateway's own database" in error.message
    else:
        raise SystemExit("not refused")
print("refused")
"""
        assert manage(environment, "shell", "-c", check).strip().endswith("refused")


def _sqlite_at(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS django_session (session_key TEXT, session_data TEXT)")
    db.commit()
    db.close()


def test_file_inside_the_data_directory_is_refused(settings, tmp_path):
    data_dir = settings.GATEWAY_DATA_DIR
    _sqlite_at(data_dir / "gateway.sqlite3")
    _sqlite_at(data_dir / "datasets" / "sales" / "v1.db")
    (tmp_path / "link.db").symlink_to(data_dir / "gateway.sqlite3")
    for path in [
        data_dir / "gateway.sqlite3",
        data_dir / "datasets" / "sales" / "v1.db",
        data_dir / "datasets" / ".." / "gateway.sqlite3",
        tmp_path / "link.db",
    ]:
        with pytest.raises(SourceError) as caught:
            source_create(name="own", url=f"sqlite:///{path}")
        assert "inside Gateway's data directory" in caught.value.message
    assert not Source.objects.exists()


def test_file_inside_gateways_own_directory_is_refused(settings):
    with pytest.raises(SourceError, match="inside Gateway's own directory"):
        source_create(name="own", url=f"sqlite:///{settings.BASE_DIR / 'manage.py'}")


def test_a_stored_source_inside_the_data_directory_fails_its_connection_test(settings):
    _sqlite_at(settings.GATEWAY_DATA_DIR / "gateway.sqlite3")
    url = f"sqlite:///{settings.GATEWAY_DATA_DIR / 'gateway.sqlite3'}"
    source = Source.objects.create(name="own", kind="sqlite", url=url)
    with pytest.raises(SourceError, match="inside Gateway's data directory"):
        source_test(source=source)
    with pytest.raises(SourceError, match="inside Gateway's data directory"):
        dataset_register(source=source, table="django_session", slug="sessions")


# -- Passwords in messages -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, password, expected",
    [
        ("Can't connect to MySQL server", "M", "Can't connect to MySQL server"),
        ("user 'root' using password M", "M", "user 'root' using password ***"),
        ("mysql://root:M@host/db", "M", "mysql://root:***@host/db"),
        ("dsn mysql://root:p%40ss@host", "p@ss", "dsn mysql://root:***@host"),
        ("token=LongPassword123xyz!", "LongPassword123", "token=***xyz!"),
        ("nothing to hide", "", "nothing to hide"),
    ],
)
def test_password_scrubbing_removes_the_password_not_words(text, password, expected):
    assert _scrub(text, password) == expected


def test_short_mysql_password_does_not_mangle_the_reason(mysql):
    with pytest.raises(SourceError) as caught:
        source_create(name="bad", url="mysql://root:e@127.0.0.1:3306/test")
    assert "Access denied for user 'root'@" in caught.value.message
    assert "Cannot connect to the source (mysql at 127.0.0.1:3306, database 'test')" in (
        caught.value.message
    )


# -- A rogue MySQL server ------------------------------------------------------------------------


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "environ"
    path.write_text("GATEWAY_SECRET_KEY=rogue-server-must-never-see-this\n")
    return path


def test_mysql_server_asking_for_a_file_never_receives_it(secret_file):
    with FakeMySQLServer(str(secret_file)) as server, pytest.raises(SourceError) as caught:
        source_create(name="rogue", url=f"mysql://root:pw@127.0.0.1:{server.port}/test")
    assert server.file_requests == 1
    assert b"rogue-server-must-never-see-this" not in server.received_after_request
    assert server.received_after_request == b""
    assert server.client_flags and not server.client_flags[0] & LOCAL_FILES
    assert "asked to read a file from Gateway's machine" in caught.value.message
    assert not Source.objects.exists()


@pytest.mark.parametrize(
    "query", ["local_infile=1", "client_flag=128", "local_infile=true&client_flag=128"]
)
def test_engine_never_sends_a_file_whatever_the_url_says(secret_file, query):
    with FakeMySQLServer(str(secret_file)) as server:
        engine = connect(f"mysql://root@127.0.0.1:{server.port}/test?{query}", timeout=2)
        try:
            with pytest.raises(RuntimeError, match="local_infile option is false"):
                engine.connect()
        finally:
            engine.dispose()
    assert server.file_requests == 1
    assert server.received_after_request == b""
    assert not server.client_flags[0] & LOCAL_FILES


def test_url_asking_for_local_infile_is_refused_before_connecting(secret_file):
    with (
        FakeMySQLServer(str(secret_file)) as server,
        pytest.raises(SourceError, match="'local_infile' is not allowed"),
    ):
        source_create(name="rogue", url=f"mysql://root@127.0.0.1:{server.port}/test?local_infile=1")
    assert server.connections == 0


# -- Comments: descriptions and units from the source ------------------------------------------


PG_COMMENTS = [
    f"COMMENT ON TABLE {TABLE} IS 'One order of the shop'",
    f"COMMENT ON COLUMN {TABLE}.amount IS 'What the customer paid [EUR]'",
    f"COMMENT ON COLUMN {TABLE}.quantity IS 'Items in the order'",
]
MY_COMMENTS = [
    f"ALTER TABLE {TABLE} COMMENT = 'One order of the shop'",
    f"ALTER TABLE {TABLE} MODIFY amount decimal(10, 2) COMMENT 'What the customer paid [EUR]'",
    f"ALTER TABLE {TABLE} MODIFY quantity bigint COMMENT 'Items in the order'",
]


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_source_comments_become_descriptions_and_units(request, kind):
    url, admin_url, comments = {
        "postgresql": (PG, POSTGRES_URL, PG_COMMENTS),
        "mysql": (MY, MYSQL_URL, MY_COMMENTS),
    }[kind]
    request.getfixturevalue({"postgresql": "pg_orders", "mysql": "my_orders"}[kind])
    sql_run(admin_url, comments)
    source = source_create(name=kind, url=url)
    dataset = dataset_register(source=source, table=TABLE, slug="orders")
    columns = _columns(dataset)
    assert (columns["amount"].description, columns["amount"].unit) == (
        "What the customer paid",
        "EUR",
    )
    assert (columns["quantity"].description, columns["quantity"].unit) == ("Items in the order", "")
    assert (columns["region"].description, columns["region"].unit) == ("", "")
    assert dataset.description == "One order of the shop"
    given = dataset_register(source=source, table=TABLE, slug="orders_2", description="Mine.")
    assert given.description == "Mine."  # the admin's own description wins
