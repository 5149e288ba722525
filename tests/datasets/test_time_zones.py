"""A dataset's time zone as its admin and its readers meet it: moments found at import and
registration, the source's zone as the default, the admin's choice, and the schema, describe and
MCP saying what the times mean."""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo

import pytest
import sqlalchemy as sa
from django.test import Client

from access.tools import tool_call
from datasets.engine.connections import duckdb_files
from datasets.models import Column, Dataset
from datasets.policy import AccessPolicy
from datasets.services import dataset_import
from datasets.sources import dataset_register, dataset_statistics_refresh, source_create
from keys.services import api_key_issue
from tests.datasets.test_admin_datasets import change_form, change_url
from tests.services import MYSQL_URL, POSTGRES_URL, sql_run

pytestmark = pytest.mark.django_db

# Flights leaving New York around the turn of the year, their departure as a moment.
CSV = (
    "flight,departed,day\n"
    "1,2013-12-31T23:30:00-05:00,2013-12-31\n"
    "2,2014-01-01T00:30:00-05:00,2014-01-01\n"
    "3,2013-06-30T23:00:00-04:00,2013-06-30\n"
)
TABLE = f"gw_t_tz_{os.getpid()}"
ROLE = f"gw_t_tz_berlin_{os.getpid()}"


@pytest.fixture(autouse=True)
def _close_files():
    yield
    duckdb_files.close_all()


@pytest.fixture
def flights(tmp_path) -> Dataset:
    path = tmp_path / "flights.csv"
    path.write_text(CSV)
    return dataset_import(path=path, slug="flights", primary_key="flight")


def reader() -> Client:
    raw = api_key_issue(name="k", datasets=[], all_datasets=True).raw_key
    return Client(headers={"Authorization": f"Bearer {raw}"})


def departures(client: Client, query: str = "") -> dict[int, str]:
    body = client.get(f"/api/v1/datasets/flights/rows/?ordering=flight&{query}").json()
    return {row["flight"]: row["departed"] for row in body["results"]}


def test_an_import_finds_moments_and_shows_them_in_utc_by_default(flights):
    columns = {column.name: column for column in flights.columns.all()}
    assert columns["departed"].instant and not columns["day"].instant
    assert flights.time_zone == ""
    assert departures(reader())[1] == "2014-01-01T04:30:00+00:00"


def test_the_admin_sets_the_zone_dates_are_counted_in(admin_client, flights):
    response = admin_client.post(
        change_url(flights), {**change_form(flights), "time_zone": "America/New_York"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    client = reader()
    assert departures(client) == {
        1: "2013-12-31T23:30:00-05:00",
        2: "2014-01-01T00:30:00-05:00",
        3: "2013-06-30T23:00:00-04:00",
    }
    # The calendar of the moments agrees with the day column.
    assert list(departures(client, "departed__year=2013")) == [1, 3]
    assert list(departures(client, "departed=2013-12-31")) == [1]
    groups = client.get(
        "/api/v1/datasets/flights/aggregate/?group_by=departed__quarter,day&metrics=count"
    ).json()["results"]
    assert {(group["departed__quarter"], group["day"]) for group in groups} == {
        ("2013-Q4", "2013-12-31"),
        ("2014-Q1", "2014-01-01"),
        ("2013-Q2", "2013-06-30"),
    }


def test_an_unknown_zone_is_a_form_error_and_changes_nothing(admin_client, flights):
    response = admin_client.post(
        change_url(flights), {**change_form(flights), "time_zone": "Mars/Olympus"}
    )
    assert response.status_code == 200
    assert "&#x27;Mars/Olympus&#x27; is not a time zone" in response.content.decode()
    flights.refresh_from_db()
    assert flights.time_zone == ""


def test_a_zone_saved_past_the_admins_check_is_read_as_utc(flights):
    Dataset.objects.filter(pk=flights.pk).update(time_zone="Mars/Olympus")
    assert departures(reader())[1] == "2014-01-01T04:30:00+00:00"


def test_the_schema_describe_and_mcp_say_what_the_times_mean(flights):
    Dataset.objects.filter(pk=flights.pk).update(time_zone="America/New_York")
    described = reader().get("/api/v1/datasets/flights/").json()
    assert described["time_zone"] == "America/New_York"
    columns = {column["name"]: column for column in described["columns"]}
    assert columns["departed"]["instant"] is True and columns["day"]["instant"] is None
    assert columns["departed"]["min"] == "2013-06-30T23:00:00-04:00"

    document = Client().get("/openapi.json").json()
    rows = document["paths"]["/api/v1/datasets/flights/rows/"]["get"]
    departed = next(p for p in rows["parameters"] if p["name"] == "departed")
    assert "Moments, shown in America/New_York; dates count there." in departed["description"]

    policy = AccessPolicy(
        principal="k:1", all_datasets=True, dataset_ids=frozenset(), row_filters={}
    )
    text = tool_call(
        "describe_dataset",
        {"dataset": "flights"},
        policy=policy,
        base_url="http://testserver",
        max_chars=50_000,
    ).text
    assert "departed (datetime; moments in America/New_York;" in text


def test_examples_filter_on_the_date_column_not_the_moment(flights):
    from datasets.schema.guide import example_calls
    from datasets.selectors import build_spec

    Dataset.objects.filter(pk=flights.pk).update(time_zone="America/New_York")
    calls = example_calls(build_spec(Dataset.objects.get(pk=flights.pk)))
    dated = [call.url for call in calls if "__" in call.url]
    assert dated and all("departed" not in url for url in dated), dated
    document = Client().get("/openapi.json").json()
    aggregate = document["paths"]["/api/v1/datasets/flights/aggregate/"]["get"]
    group_by = next(p for p in aggregate["parameters"] if p["name"] == "group_by")
    assert "e.g. day__quarter." in group_by["description"]


@pytest.fixture
def berlin_table(postgres):
    """A PostgreSQL table read by a role whose sessions run in Europe/Berlin."""
    drop = [f"DROP TABLE IF EXISTS {TABLE}", f"DROP ROLE IF EXISTS {ROLE}"]
    sql_run(POSTGRES_URL, drop)
    sql_run(
        POSTGRES_URL,
        [
            f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, at timestamptz, wall timestamp)",
            f"INSERT INTO {TABLE} VALUES (1, '2013-12-31 23:30:00+00', '2013-12-31 23:30:00')",
            f"CREATE ROLE {ROLE} LOGIN",
            f"ALTER ROLE {ROLE} SET timezone = 'Europe/Berlin'",
            f"GRANT SELECT ON {TABLE} TO {ROLE}",
        ],
    )
    yield f"postgresql://{ROLE}@127.0.0.1:5432/test"
    sql_run(POSTGRES_URL, drop)


def test_registration_takes_the_servers_zone_and_finds_moments(berlin_table):
    source = source_create(name="pg", url=berlin_table)
    dataset = dataset_register(source=source, table=TABLE, slug="flights")
    assert dataset.time_zone == "Europe/Berlin"
    instant = dict(Column.objects.filter(dataset=dataset).values_list("name", "instant"))
    assert instant == {"id": False, "at": True, "wall": False}
    body = reader().get("/api/v1/datasets/flights/rows/").json()
    assert body["results"][0]["at"] == "2014-01-01T00:30:00+01:00"
    assert body["results"][0]["wall"] == "2013-12-31T23:30:00"


def test_refreshing_statistics_reads_again_which_columns_hold_moments(berlin_table):
    source = source_create(name="pg", url=berlin_table)
    dataset = dataset_register(source=source, table=TABLE, slug="flights")
    Column.objects.filter(dataset=dataset).update(instant=False)  # as registered before
    dataset_statistics_refresh(dataset=dataset)
    assert dataset.columns.get(name="at").instant
    assert not dataset.columns.get(name="wall").instant


def test_a_mysql_timestamp_is_a_moment_and_a_datetime_is_not(mysql):
    drop = [f"DROP TABLE IF EXISTS {TABLE}"]
    sql_run(MYSQL_URL, drop)
    sql_run(
        MYSQL_URL,
        [
            f"CREATE TABLE {TABLE} (id int PRIMARY KEY, at timestamp NULL, wall datetime)",
            f"INSERT INTO {TABLE} VALUES (1, '2013-12-31 23:30:00', '2013-12-31 23:30:00')",
        ],
    )
    try:
        source = source_create(name="my", url="mysql://root@127.0.0.1:3306/test")
        dataset = dataset_register(source=source, table=TABLE, slug="flights")
        instant = dict(Column.objects.filter(dataset=dataset).values_list("name", "instant"))
        assert instant == {"id": False, "at": True, "wall": False}
        assert dataset.time_zone == "UTC"  # the server's SYSTEM zone, UTC here
    finally:
        sql_run(MYSQL_URL, drop)


@pytest.mark.parametrize(
    ("columns", "zone"),
    [
        ("at DateTime('America/New_York')", "America/New_York"),
        ("at Nullable(DateTime('America/New_York'))", "America/New_York"),
        ("at DateTime('America/New_York'), seen DateTime('Asia/Tokyo')", "UTC"),
        ("at DateTime", "UTC"),
    ],
)
def test_a_clickhouse_table_takes_the_zone_its_datetimes_name(clickhouse, columns, zone):
    from tests.datasets.engine.sales_table import _clickhouse_client
    from tests.services import CLICKHOUSE_URL

    client = _clickhouse_client(CLICKHOUSE_URL)
    client.execute(f"DROP TABLE IF EXISTS {TABLE}")
    client.execute(f"CREATE TABLE {TABLE} (id Int64, {columns}) ENGINE = Memory")
    moment = 1388532600  # 2013-12-31 23:30 UTC
    client.execute(f"INSERT INTO {TABLE} (id, at) VALUES", [(1, moment)])
    try:
        source = source_create(name="ch", url=CLICKHOUSE_URL)
        dataset = dataset_register(source=source, table=TABLE, slug="flights", primary_key="id")
        assert dataset.time_zone == zone  # the server's own zone is UTC here
        shown = reader().get("/api/v1/datasets/flights/rows/1/").json()["at"]
        expected = dt.datetime.fromtimestamp(moment, zoneinfo.ZoneInfo(zone)).isoformat()
        assert shown == expected
    finally:
        client.execute(f"DROP TABLE IF EXISTS {TABLE}")
        client.disconnect()


def _zone_mysql_lacks() -> str:
    """A zone Python knows and the MySQL server's time zone tables do not (mysql_tzinfo_to_sql
    leaves out Factory, IANA's placeholder)."""
    engine = sa.create_engine(MYSQL_URL)
    try:
        with engine.connect() as connection:
            for zone in sorted(zoneinfo.available_timezones()):
                query = sa.select(sa.func.convert_tz("2000-01-01 00:00:00", "+00:00", zone))
                if connection.execute(query).scalar() is None:
                    return zone
    finally:
        engine.dispose()
    raise AssertionError("The MySQL server knows every zone: no zone to refuse.")


def test_a_zone_the_mysql_server_cannot_count_in_is_refused(admin_client, mysql):
    """Without a zone in its time zone tables, MySQL's CONVERT_TZ answers NULL: every date bucket
    of the dataset's moments would come back empty."""
    drop = [f"DROP TABLE IF EXISTS {TABLE}"]
    lacking = _zone_mysql_lacks()
    sql_run(MYSQL_URL, drop + [f"CREATE TABLE {TABLE} (id int PRIMARY KEY, at timestamp NULL)"])
    try:
        source = source_create(name="my", url="mysql://root@127.0.0.1:3306/test")
        dataset = dataset_register(source=source, table=TABLE, slug="flights")
        response = admin_client.post(
            change_url(dataset), {**change_form(dataset), "time_zone": lacking}
        )
        assert response.status_code == 200
        assert f"cannot count dates in {lacking}: it has no time zone tables" in (
            response.content.decode()
        )
        dataset.refresh_from_db()
        assert dataset.time_zone == "UTC"
        response = admin_client.post(
            change_url(dataset), {**change_form(dataset), "time_zone": "America/New_York"}
        )
        assert response.status_code == 302
    finally:
        sql_run(MYSQL_URL, drop)
