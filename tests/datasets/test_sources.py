"""Foreign SQL sources against real PostgreSQL, MariaDB and SQLite files: add, test, discover, register."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from django.db import connection as django_connection

from datasets.models import Column, Dataset, Source
from datasets.selectors import source_url
from datasets.sources import (
    SourceError,
    column_type,
    dataset_register,
    dataset_statistics_refresh,
    source_create,
    source_discover,
    source_location_parse,
    source_test,
    source_update,
    url_without_password,
)
from tests.services import MYSQL_URL, POSTGRES_URL

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


def _run(url: str, statements: list[str]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def pg_orders(postgres):
    _run(POSTGRES_URL, PG_DROP + PG_DDL)
    yield
    _run(POSTGRES_URL, PG_DROP)


@pytest.fixture
def my_orders(mysql):
    _run(MYSQL_URL, MY_DROP + MY_DDL)
    yield
    _run(MYSQL_URL, MY_DROP)


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
    _run(
        POSTGRES_URL,
        drop
        + [
            "CREATE VIEW gw_t_src_slow_v AS SELECT g AS id, 'x'::text AS label "
            "FROM generate_series(1, 3) g WHERE pg_sleep(1.5)::text = ''"
        ],
    )
    yield
    _run(POSTGRES_URL, drop)


def test_statistics_past_the_statement_timeout_are_left_empty(pg_slow_view):
    source = source_create(name="pg", url=PG, statement_timeout=1)
    dataset = dataset_register(source=source, table="gw_t_src_slow_v", slug="slow")
    columns = _columns(dataset)
    assert dataset.row_count is None
    assert columns["label"].enum is None and columns["id"].min_value is None
    assert [column.type for column in columns.values()] == ["integer", "string"]
