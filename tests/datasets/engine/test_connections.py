"""Foreign sources through the engine's own connections: read-only, cut at the statement timeout,
and a typed error when unreachable."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from datasets.engine.connections import source_engine
from datasets.engine.errors import SourceUnavailable
from datasets.engine.execute import fetch, run_rows
from datasets.engine.parse import parse_rows
from datasets.engine.spec import DatasetSpec
from tests.datasets.engine.conftest import SOURCE_IDS, source
from tests.datasets.engine.sales_table import ROWS, TABLE, dataset

PROBE = f"gw_t_engine_probe_{TABLE.rsplit('_', 1)[-1]}"

WRITES = [
    f"INSERT INTO {TABLE} (id) VALUES (100000)",
    f"UPDATE {TABLE} SET qty = 0",
    f"DELETE FROM {TABLE}",
    f"CREATE TABLE {PROBE} (x integer)",
    f"DROP TABLE {TABLE}",
]


def _count(spec: DatasetSpec) -> int:
    with source_engine(spec.source).connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {TABLE}")).scalar_one()


@pytest.mark.parametrize("statement", WRITES, ids=[w.split()[0] for w in WRITES])
def test_write_through_the_engine_connection_fails(foreign_sales, statement):
    engine = source_engine(foreign_sales.source)
    with engine.connect() as connection, pytest.raises(sa.exc.DBAPIError):
        connection.execute(sa.text(statement))
        connection.commit()

    assert _count(foreign_sales) == len(ROWS)
    assert PROBE not in sa.inspect(engine).get_table_names()


def test_write_after_commit_on_a_reused_connection_still_fails(foreign_sales):
    # The pool hands the same session back: read-only must outlive a transaction's end.
    engine = source_engine(foreign_sales.source)
    for _ in range(3):
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            connection.commit()
    with engine.connect() as connection, pytest.raises(sa.exc.DBAPIError):
        connection.execute(sa.text(WRITES[0]))
        connection.commit()

    assert _count(foreign_sales) == len(ROWS)


def _slow_statement(kind: str):
    if kind == "postgresql":
        return sa.select(sa.func.pg_sleep(3))
    if kind == "mysql":
        return sa.select(sa.func.sleep(3))
    if kind == "clickhouse":
        # A count of an endless table of numbers.
        return sa.select(sa.func.count()).select_from(sa.table("numbers", schema="system"))
    # SQLite has no sleep: a recursive count that would run for minutes.
    numbers = sa.select(sa.literal(1).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(sa.select(numbers.c.n + 1).where(numbers.c.n < 10**10))
    return sa.select(sa.func.count()).select_from(numbers)


def test_slow_query_is_cut_at_the_source_timeout(foreign_sales):
    kind = foreign_sales.source.kind
    slow = dataset(
        source=source(kind, foreign_sales.source.url, id_=1000 + SOURCE_IDS[kind], timeout=1)
    )
    try:
        with pytest.raises(SourceUnavailable) as caught:
            fetch(slow, _slow_statement(kind))
        assert caught.value.code == "source_timeout"
        assert caught.value.retry_after > 0
        # The connection goes back to the pool usable, its timeout still set.
        assert len(run_rows(slow, parse_rows(slow, {"limit": "3"})).rows) == 3
    finally:
        source_engine(slow.source).dispose()


UNREACHABLE = {
    "postgresql": "postgresql://postgres@127.0.0.1:1/test",
    "mysql": "mysql://root@127.0.0.1:1/test",
    "sqlite": "sqlite:////nonexistent/gateway/engine.db",
}


@pytest.mark.parametrize("kind", list(UNREACHABLE))
def test_unreachable_source_is_source_unavailable(kind):
    spec = dataset(source=source(kind, UNREACHABLE[kind], id_=93000 + len(kind)))
    try:
        with pytest.raises(SourceUnavailable) as caught:
            run_rows(spec, parse_rows(spec, {}))
        assert caught.value.code == "source_unavailable"
        assert "127.0.0.1" not in caught.value.message and "nonexistent" not in caught.value.message
    finally:
        source_engine(spec.source).dispose()
