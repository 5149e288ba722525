"""Every query of an uploaded dataset runs under a time limit, as on SQL sources: a query past it
is interrupted and answered as a timeout, and the connection keeps serving the next queries."""

from __future__ import annotations

import dataclasses

import duckdb
import pytest

from datasets.engine.connections import duckdb_files
from datasets.engine.errors import SourceUnavailable
from datasets.engine.spec import ColumnSpec, DatasetSpec
from tests.datasets.engine.sales_table import get_aggregate, get_rows

ROWS = 2_000_000
# Grouping two million rows into a million groups takes a tenth of a second or more; the limit
# is a small fraction of that, so the query is always past it.
HEAVY = "group_by=value&metrics=count&ordering=-count&limit=3"
TINY_LIMIT = 0.005


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> DatasetSpec:
    path = str(tmp_path_factory.mktemp("time_limit") / "big.duckdb")
    connection = duckdb.connect(path)
    try:
        connection.execute(
            f"CREATE TABLE data AS SELECT range AS id, (range * 7919) % 1000003 AS value "
            f"FROM range({ROWS})"
        )
    finally:
        connection.close()
    yield DatasetSpec(
        id=92001,
        slug="big",
        title="Big",
        description="Many rows.",
        table="data",
        file_path=path,
        primary_key="id",
        row_count=ROWS,
        all_columns=(
            ColumnSpec(name="id", physical="id", type="integer"),
            ColumnSpec(name="value", physical="value", type="integer"),
        ),
    )
    duckdb_files.close(path)


def test_a_query_past_the_time_limit_is_interrupted_as_a_timeout(big):
    limited = dataclasses.replace(big, statement_timeout=TINY_LIMIT)

    with pytest.raises(SourceUnavailable) as raised:
        get_aggregate(limited, HEAVY)

    assert raised.value.code == "source_timeout"
    assert raised.value.retry_after > 0
    assert "limit" in raised.value.message


def test_the_connection_answers_the_next_query_after_an_interrupted_one(big):
    limited = dataclasses.replace(big, statement_timeout=TINY_LIMIT)
    with pytest.raises(SourceUnavailable):
        get_aggregate(limited, HEAVY)

    # The same file, so the same cursor of this thread: no interrupt is left pending on it.
    assert get_rows(big, "id=5")["rows"] == [{"id": 5, "value": 5 * 7919 % 1000003}]


def test_queries_within_the_limit_are_not_interrupted(big):
    # The default limit (seconds) leaves the heavy query alone, however many run in a row.
    for _ in range(3):
        assert len(get_aggregate(big, HEAVY)) == 3
    assert big.time_limit >= 1
