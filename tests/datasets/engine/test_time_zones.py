"""Moments on every backend that has them: shown with their offset in the dataset's time zone,
their date filters and buckets counted in that zone, as a person there reads a calendar."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os

import duckdb
import pytest
import sqlalchemy as sa

from datasets.engine.connections import duckdb_files, source_engine
from datasets.engine.spec import ColumnSpec, DatasetSpec
from tests.datasets.engine.conftest import SERVICES, engine_url, source
from tests.datasets.engine.sales_table import _clickhouse_client, get_aggregate, get_rows
from tests.services import CLICKHOUSE_URL, MYSQL_URL, POSTGRES_URL

TABLE = f"gw_t_engine_moments_{os.getpid()}"
NEW_YORK = "America/New_York"
UTC = dt.UTC

# Moments around the edges of a New York year and quarter, and a day after the clocks moved.
MOMENTS = {
    1: dt.datetime(2014, 1, 1, 4, 30, tzinfo=UTC),  # 2013-12-31 23:30 in New York
    2: dt.datetime(2014, 1, 1, 5, 30, tzinfo=UTC),  # 2014-01-01 00:30
    3: dt.datetime(2013, 7, 1, 3, 0, tzinfo=UTC),  # 2013-06-30 23:00 (EDT): still Q2 there
    4: dt.datetime(2013, 3, 10, 16, 0, tzinfo=UTC),  # 2013-03-10 12:00 (EDT since 07:00 UTC)
}
BACKENDS = ("duckdb", "postgresql", "mysql", "clickhouse")
SQL = {
    "postgresql": ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP"),
    "mysql": ("TIMESTAMP NULL", "DATETIME"),
}


def _local(moment: dt.datetime) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(NEW_YORK)).replace(tzinfo=None)


def _spec(backend: str, file_path: str = "") -> DatasetSpec:
    columns = [
        ColumnSpec(name="id", physical="id", type="integer"),
        ColumnSpec(name="seen", physical="seen", type="datetime", instant=True),
    ]
    if backend != "clickhouse":  # every ClickHouse DateTime is a moment
        columns.append(ColumnSpec(name="wall", physical="wall", type="datetime"))
    spec_source = None
    if backend in SQL:
        url = POSTGRES_URL if backend == "postgresql" else MYSQL_URL
        spec_source = source(backend, engine_url(url, backend), id_=92000 + len(backend))
    elif backend == "clickhouse":
        spec_source = source("clickhouse", CLICKHOUSE_URL, id_=92099)
    return DatasetSpec(
        id=7,
        slug="moments",
        title="Moments",
        description="",
        table="data" if backend == "duckdb" else TABLE,
        source=spec_source,
        file_path=file_path,
        primary_key="id",
        row_count=len(MOMENTS),
        time_zone=NEW_YORK,
        all_columns=tuple(columns),
    )


def _create(backend: str, tmp_path_factory) -> str:
    """The table on the backend; the DuckDB file's path for DuckDB."""
    rows = [(key, moment, _local(moment)) for key, moment in MOMENTS.items()]
    if backend == "duckdb":
        path = str(tmp_path_factory.mktemp("moments") / "moments.duckdb")
        connection = duckdb.connect(path)
        connection.execute(
            "CREATE TABLE data (id INTEGER PRIMARY KEY, seen TIMESTAMPTZ, wall TIMESTAMP)"
        )
        connection.executemany("INSERT INTO data VALUES (?, ?, ?)", rows)
        connection.close()
        return path
    if backend == "clickhouse":
        client = _clickhouse_client(CLICKHOUSE_URL)
        client.execute(f"DROP TABLE IF EXISTS `{TABLE}`")
        client.execute(
            f"CREATE TABLE `{TABLE}` (id Int64, seen DateTime) ENGINE = MergeTree() ORDER BY id"
        )
        client.execute(f"INSERT INTO `{TABLE}` (id, seen) VALUES", [row[:2] for row in rows])
        client.disconnect()
        return ""
    moment_type, wall_type = SQL[backend]
    engine = sa.create_engine(POSTGRES_URL if backend == "postgresql" else MYSQL_URL)
    with engine.begin() as connection:
        if backend == "mysql":
            connection.execute(sa.text("SET time_zone = '+00:00'"))
            rows = [(key, moment.replace(tzinfo=None), wall) for key, moment, wall in rows]
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        connection.execute(
            sa.text(
                f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, seen {moment_type}, wall {wall_type})"
            )
        )
        for key, moment, wall in rows:
            connection.execute(
                sa.text(f"INSERT INTO {TABLE} VALUES (:id, :seen, :wall)"),
                {"id": key, "seen": moment, "wall": wall},
            )
    engine.dispose()
    return ""


def _drop(backend: str) -> None:
    if backend == "clickhouse":
        client = _clickhouse_client(CLICKHOUSE_URL)
        client.execute(f"DROP TABLE IF EXISTS `{TABLE}`")
        client.disconnect()
    elif backend in SQL:
        engine = sa.create_engine(POSTGRES_URL if backend == "postgresql" else MYSQL_URL)
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        engine.dispose()


@pytest.fixture(scope="module")
def _tables(tmp_path_factory):
    made: dict[str, DatasetSpec] = {}

    def make(backend: str) -> DatasetSpec:
        if backend not in made:
            made[backend] = _spec(backend, _create(backend, tmp_path_factory))
        return made[backend]

    yield make
    for backend, spec in made.items():
        if spec.source is not None:
            source_engine(spec.source).dispose()
        else:
            duckdb_files.close(spec.file_path)
        _drop(backend)


@pytest.fixture(params=BACKENDS)
def moments(request, _tables) -> DatasetSpec:
    """The moments dataset in New York time, once per backend."""
    if request.param in SERVICES:
        request.getfixturevalue(SERVICES[request.param])
    return _tables(request.param)


def _ids(spec: DatasetSpec, query: str) -> list[int]:
    return sorted(row["id"] for row in get_rows(spec, query)["rows"])


def test_a_moment_is_shown_with_its_offset_in_the_dataset_zone(moments):
    rows = {row["id"]: row["seen"] for row in get_rows(moments, "ordering=id")["rows"]}
    assert rows == {
        1: "2013-12-31T23:30:00-05:00",
        2: "2014-01-01T00:30:00-05:00",
        3: "2013-06-30T23:00:00-04:00",
        4: "2013-03-10T12:00:00-04:00",
    }


def test_a_moment_in_utc_keeps_its_offset(moments):
    utc = dataclasses.replace(moments, time_zone="UTC")
    rows = {row["id"]: row["seen"] for row in get_rows(utc, "ordering=id")["rows"]}
    assert rows[1] == "2014-01-01T04:30:00+00:00"
    # The same calendar filters answer for UTC's calendar then.
    assert _ids(utc, "seen__year=2013") == [3, 4]


def test_date_parts_count_in_the_dataset_zone(moments):
    assert _ids(moments, "seen__year=2013") == [1, 3, 4]
    assert _ids(moments, "seen__quarter=2") == [3]  # July 1 in UTC, June 30 in New York
    assert _ids(moments, "seen__month=12") == [1]


def test_a_bare_date_is_the_whole_day_in_the_dataset_zone(moments):
    assert _ids(moments, "seen=2013-12-31") == [1]
    assert _ids(moments, "seen__lte=2013-12-31") == [1, 3, 4]
    assert _ids(moments, "seen__gt=2013-12-31") == [2]


def test_a_time_without_offset_is_a_time_in_the_zone_and_one_with_an_offset_is_that_moment(moments):
    assert _ids(moments, "seen__gte=2014-01-01T00:00:00") == [2]
    assert _ids(moments, "seen__gte=2014-01-01T00:00:00Z") == [1, 2]
    assert _ids(moments, "seen=2013-12-31T23:30:00-05:00") == [1]
    assert _ids(moments, "seen__in=2014-01-01T04:30:00Z,2013-03-10T12:00:00") == [1, 4]


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [
        ("year", {"2013": 3, "2014": 1}),
        ("quarter", {"2013-Q1": 1, "2013-Q2": 1, "2013-Q4": 1, "2014-Q1": 1}),
        ("month", {"2013-03": 1, "2013-06": 1, "2013-12": 1, "2014-01": 1}),
        ("week", {"2013-W10": 1, "2013-W26": 1, "2014-W01": 2}),
        ("day", {"2013-03-10": 1, "2013-06-30": 1, "2013-12-31": 1, "2014-01-01": 1}),
    ],
)
def test_buckets_count_days_in_the_dataset_zone(moments, bucket, expected):
    groups = get_aggregate(moments, f"group_by=seen__{bucket}&metrics=count")
    assert {group[f"seen__{bucket}"]: group["count"] for group in groups} == expected


def test_the_earliest_and_latest_moments_are_shown_in_the_zone(moments):
    (totals,) = get_aggregate(moments, "metrics=min:seen,max:seen")
    assert totals == {
        "min_seen": "2013-03-10T12:00:00-04:00",
        "max_seen": "2014-01-01T00:30:00-05:00",
    }
    groups = get_aggregate(moments, "group_by=seen&metrics=count&ordering=seen&limit=1")
    assert groups == [{"seen": "2013-03-10T12:00:00-04:00", "count": 1}]


def test_a_row_by_key_shows_its_moment_in_the_zone(moments):
    from datasets.engine.execute import run_row

    assert run_row(moments, "1")["seen"] == "2013-12-31T23:30:00-05:00"


@pytest.mark.parametrize("backend", ["duckdb", "postgresql", "mysql"])
def test_a_wall_clock_time_is_taken_as_in_the_zone(request, _tables, backend):
    if backend in SERVICES:
        request.getfixturevalue(SERVICES[backend])
    spec = _tables(backend)
    rows = {row["id"]: row["wall"] for row in get_rows(spec, "ordering=id")["rows"]}
    assert rows[1] == "2013-12-31T23:30:00"  # shown as stored: no offset is invented
    assert _ids(spec, "wall__year=2013") == [1, 3, 4]
    # A moment with an offset is compared as the time it is in the dataset's zone.
    assert _ids(spec, "wall=2014-01-01T04:30:00Z") == [1]
