"""Running compiled queries on a dataset's backend and turning rows into JSON-ready values."""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import operator
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from datasets.engine import zones
from datasets.engine.compile import (
    MAX_HASHED_GROUPS,
    compile_aggregate,
    compile_count,
    compile_group_count,
    compile_row,
    compile_rows,
    hashed_groups,
)
from datasets.engine.connections import FileGone, duckdb_files, source_engine
from datasets.engine.dialects import source_dialect
from datasets.engine.errors import NotFound, QueryError, SourceUnavailable
from datasets.engine.parse import parse_key_value
from datasets.engine.pii import PROTECT
from datasets.engine.query import AggregateQuery, Filter, GroupKey, RowsQuery
from datasets.engine.result_cache import result_cache
from datasets.engine.spec import ColumnSpec, DatasetSpec, SourceSpec
from datasets.engine.sql import statement_sql
from datasets.version_cache import local_version

logger = logging.getLogger("gateway")

# DuckDB speaks PostgreSQL's SQL closely enough for the statements the compiler builds.
_DUCKDB_DIALECT = postgresql.dialect(paramstyle="qmark")


@dataclass(frozen=True)
class Page:
    """A page of rows and the exact count of rows matching the query."""

    count: int
    rows: list[dict]


# Values


def _iso(value):
    if isinstance(value, str):
        return (
            dt.datetime.fromisoformat(value).isoformat()
            if "T" not in value and " " in value
            else value
        )
    return value.isoformat()


def _converter(type_: str) -> Callable:
    if type_ == "integer":
        return int
    if type_ == "number":
        return lambda value: float(value) if isinstance(value, Decimal) else value
    if type_ == "boolean":
        return bool
    if type_ == "date":
        return lambda value: (
            value.isoformat()[:10] if isinstance(value, dt.date) else str(value)[:10]
        )
    if type_ == "datetime":
        return _iso
    return lambda value: value if isinstance(value, str) else str(value)


def value_converter(column: ColumnSpec, zone: str) -> Callable:
    """JSON-ready output of a column's values, personal data masked or hashed, moments with their
    offset in the dataset's zone."""
    convert = (
        (lambda value: zones.shown(value, zone)) if column.instant else _converter(column.type)
    )
    protect = PROTECT.get(column.pii)
    if protect is None:
        return lambda value: None if value is None else convert(value)
    return lambda value: protect(None if value is None else convert(value))


def _records(columns: list[tuple[str, Callable]], rows: Sequence[Sequence[Any]]) -> list[dict]:
    return [
        {name: convert(value) for (name, convert), value in zip(columns, row, strict=True)}
        for row in rows
    ]


# Backends


class _Deadlines:
    """One thread that interrupts DuckDB queries past their time limit.

    DuckDB has no statement timeout; a thread started per query would cost more than the
    0.7 ms a row lookup takes, so one watchdog serves every query of the process.
    """

    REPEAT_SECONDS = 0.05

    def __init__(self) -> None:
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        # A forked worker inherits no thread: the next query starts its own watchdog.
        self._start_lock = threading.Lock()
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._pending: dict[int, Callable[[], None]] = {}
        self._tokens = itertools.count()
        self._started = False

    def _start(self) -> None:
        with self._start_lock:
            if not self._started:
                thread = threading.Thread(target=self._watch, name="gateway-deadlines", daemon=True)
                thread.start()
                self._started = True

    def arm(self, seconds: float, interrupt: Callable[[], None]) -> int:
        """Call `interrupt` in `seconds` unless disarmed first; returns the token to disarm with."""
        if not self._started:
            self._start()
        token = next(self._tokens)
        deadline = time.monotonic() + seconds
        with self._condition:
            earliest = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, token))
            self._pending[token] = interrupt
            if earliest:
                self._condition.notify()
        return token

    def disarm(self, token: int) -> None:
        """Forget a deadline: once this returns, its interrupt is not called any more."""
        with self._condition:
            self._pending.pop(token, None)

    def _watch(self) -> None:
        with self._condition:
            while True:
                if not self._heap:
                    self._condition.wait()
                    continue
                deadline, token = self._heap[0]
                if token not in self._pending:
                    heapq.heappop(self._heap)
                    continue
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._heap)
                # Under the lock, so that a query that disarmed its deadline is never interrupted
                # afterwards (the cursor may have started the thread's next query).
                try:
                    self._pending[token]()
                except Exception:  # a closed connection: nothing left to interrupt
                    logger.debug("Interrupting a query failed", exc_info=True)
                    del self._pending[token]
                    continue
                # DuckDB forgets an interrupt that comes before the statement starts running:
                # repeat it until the query gives up its deadline.
                heapq.heappush(self._heap, (time.monotonic() + self.REPEAT_SECONDS, token))


_deadlines = _Deadlines()


def _query_file(path: str, sql: str, params, time_limit: float) -> list[tuple]:
    with duckdb_files.reading(path) as cursor:
        token = _deadlines.arm(time_limit, cursor.interrupt)
        try:
            # fetchall(): a cursor with an unfinished result refuses new work.
            return cursor.execute(sql, params).fetchall()
        finally:
            _deadlines.disarm(token)


def _answer_key(sql: str, params: list) -> tuple:
    # Each value with its type: 1, 1.0 and True are equal keys in Python, not in SQL.
    return (
        sql,
        *((type(value), tuple(value) if isinstance(value, list) else value) for value in params),
    )


def _fetch_duckdb(spec: DatasetSpec, statement: sa.Select) -> Sequence[Sequence[Any]]:
    """DuckDB's answer on the version file, kept for the same statement after (result_cache.py)."""
    compiled = statement_sql(_DUCKDB_DIALECT, statement)
    assert compiled is not None  # DuckDB's IN binds a list: no statement expands at execution
    sql, params = compiled
    assert isinstance(params, list)  # DuckDB's paramstyle is positional
    key = _answer_key(sql, params)
    rows = result_cache.get(spec.file_path, key)
    if rows is None:
        rows = _run_duckdb(spec, sql, params)
        result_cache.put(spec.file_path, key, rows)
    return rows


def _run_duckdb(spec: DatasetSpec, sql: str, params: list) -> list[tuple]:
    time_limit = spec.time_limit
    path = spec.file_path
    try:
        path = local_version(spec)
        try:
            return _query_file(path, sql, params, time_limit)
        except FileGone:
            if not spec.file_key:
                raise
            # Evicted from this host's cache since this process opened it: fetched again.
            duckdb_files.close(path)
            path = local_version(spec)
            return _query_file(path, sql, params, time_limit)
    except duckdb.InterruptException:
        raise SourceUnavailable(
            f"The query took longer than the dataset's {time_limit:g} s limit: narrow it with "
            "filters, or retry later.",
            code="source_timeout",
        ) from None
    except (duckdb.IOException, duckdb.ConnectionException, OSError) as error:
        logger.warning("Dataset file %s cannot be read: %s", path, error)
        raise SourceUnavailable(
            "The dataset's file cannot be read right now; retry shortly."
        ) from None
    except duckdb.Error as error:
        # Valid input reaching here means the column metadata no longer matches the file (a
        # type changed in the admin): the dataset needs its admin, not a different call.
        logger.error("Dataset file %s refused a query: %s", path, error)
        raise SourceUnavailable(
            "The dataset cannot answer this query right now: its description needs its admin's "
            "attention.",
            code="source_error",
        ) from None


def _is_timeout(source: SourceSpec, error: sa.exc.DBAPIError) -> bool:
    return source_dialect(source.kind).is_timeout(error.orig or error)


def _fetch_sql(source: SourceSpec, statement: sa.Select) -> Sequence[Sequence[Any]]:
    engine = source_engine(source)
    try:
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            deadline = getattr(raw, "gateway_deadline", None)
            if deadline is not None:
                deadline["deadline"] = time.monotonic() + source.statement_timeout
            try:
                return source_dialect(source.kind).run(connection, statement)
            finally:
                if deadline is not None:
                    deadline["deadline"] = None
    except sa.exc.DBAPIError as error:
        if _is_timeout(source, error):
            raise SourceUnavailable(
                f"The query took longer than the source's {source.statement_timeout} s limit: narrow it with filters, or retry later.",
                code="source_timeout",
            ) from None
        logger.warning("Source %s failed: %s", source.id, error.orig)
        raise SourceUnavailable("The dataset's database is not answering; retry shortly.") from None
    except sa.exc.TimeoutError:
        raise SourceUnavailable("The dataset's database is busy; retry shortly.") from None


def fetch(spec: DatasetSpec, statement: sa.Select) -> Sequence[Sequence[Any]]:
    """Rows of a statement, from the dataset's own backend."""
    if spec.source is None:
        return _fetch_duckdb(spec, statement)
    return _fetch_sql(spec.source, statement)


# Operations


def run_rows(spec: DatasetSpec, query: RowsQuery) -> Page:
    """A page of rows with the exact count of matching rows, both computed by the database."""
    rows = fetch(spec, compile_rows(spec, query))
    if len(rows) < query.limit and (rows or query.offset == 0):
        # The page ends before the limit: the count is known without counting.
        count = query.offset + len(rows)
    elif (
        not query.filters
        and not query.search
        and spec.source is None
        and spec.row_count is not None
    ):
        count = spec.row_count  # an uploaded dataset's file never changes
    else:
        count = fetch(spec, compile_count(spec, query))[0][0]
    columns = [(column.name, value_converter(column, spec.time_zone)) for column in query.fields]
    return Page(count=int(count), rows=_records(columns, rows))


def run_row(spec: DatasetSpec, raw_key: str, filters: tuple[Filter, ...] = ()) -> dict:
    """The row whose primary key is `raw_key`, or NotFound."""
    key = parse_key_value(spec, raw_key)
    shown = raw_key if len(raw_key) <= 40 else raw_key[:40] + "…"
    if key is None:
        raise NotFound(f"No row of {spec.slug} has {spec.primary_key} = '{shown}'.")
    rows = fetch(spec, compile_row(spec, key, filters))
    if not rows:
        raise NotFound(f"No row of {spec.slug} has {spec.primary_key} = '{shown}'.")
    columns = [(column.name, value_converter(column, spec.time_zone)) for column in spec.columns]
    return _records(columns, rows[:1])[0]


# Words of a column's name that say it names the row (name, airport_name, title).
LABEL_WORDS = ("name", "title", "label")


def label_column(spec: DatasetSpec) -> ColumnSpec | None:
    """What names a row of a dataset: the admin's label column, else its first text column named
    like a name, else its first text column; never the key, nor a masked or hashed column."""
    chosen = spec.column(spec.label) if spec.label else None
    candidates = [
        column
        for column in spec.columns
        if column.name != spec.primary_key and not column.protected
    ]
    if chosen is not None and chosen in candidates:
        return chosen
    texts = [column for column in candidates if column.type == "string"]
    named = [
        column for column in texts if any(word in LABEL_WORDS for word in column.name.split("_"))
    ]
    found = named or texts
    return found[0] if found else None


def run_labels(
    spec: DatasetSpec, keys: Sequence[Any], filters: tuple[Filter, ...] = ()
) -> dict[str, Any]:
    """The label of each row of `spec` whose key is among `keys` (as another dataset's rows
    hold them) and that `filters` (the reader's row filters) let through, by the key's text."""
    key = spec.column(spec.primary_key or "")
    label = label_column(spec)
    if key is None or key.protected or label is None:
        return {}
    values = [parse_key_value(spec, raw) for raw in dict.fromkeys(str(value) for value in keys)]
    values = [value for value in values if value is not None]
    if not values:
        return {}
    query = RowsQuery(
        filters=(Filter(key, "in", tuple(values)), *filters),
        search=None,
        ordering=(),
        fields=(key, label),
        limit=len(values),
        offset=0,
    )
    to_key, to_label = value_converter(key, spec.time_zone), value_converter(label, spec.time_zone)
    return {
        str(to_key(found)): to_label(name) for found, name in fetch(spec, compile_rows(spec, query))
    }


def _metric_converter(metric, zone: str) -> Callable:
    if metric.function in ("count", "count_distinct"):
        return lambda value: int(value or 0)
    if metric.function == "sum" and metric.column.type == "integer":
        return lambda value: None if value is None else int(value)
    if metric.function in ("sum", "avg"):
        # Sums of binary floats carry noise in the last digits (2085670.3000000007).
        return lambda value: None if value is None else float(f"{float(value):.12g}")
    column = metric.column
    return value_converter(
        ColumnSpec(name="", physical="", type=column.type, instant=column.instant), zone
    )


def _group_converter(key: GroupKey, zone: str) -> Callable:
    if key.bucket is None:
        return value_converter(key.column, zone)
    protect = PROTECT.get(key.column.pii, str)
    return lambda value: None if value is None else protect(str(value))


def _ordered(results: list[dict], orders: list[tuple[str, bool]]) -> list[dict]:
    """Results sorted by (key, descending) pairs, NULLs last either way (stable)."""
    for key, descending in reversed(orders):
        present = [row for row in results if row[key] is not None]
        present.sort(key=operator.itemgetter(key), reverse=descending)
        results = present + [row for row in results if row[key] is None]
    return results


def run_aggregate(spec: DatasetSpec, query: AggregateQuery) -> list[dict]:
    """Grouped metrics, computed by the database."""
    rows = fetch(spec, compile_aggregate(spec, query))
    columns = [(key.key, _group_converter(key, spec.time_zone)) for key in query.group_by]
    columns += [(metric.key, _metric_converter(metric, spec.time_zone)) for metric in query.metrics]
    if not hashed_groups(query):
        return _records(columns, rows)
    # The database returned every group unordered: order them on what the client sees (the
    # digests), every group key breaking ties, and only then keep `limit` of them.
    if len(rows) > MAX_HASHED_GROUPS:
        hashed = ", ".join(key.key for key in query.group_by if key.column.pii == "hash")
        raise QueryError(
            "too_many_groups",
            f"Grouping by {hashed} gives more than {MAX_HASHED_GROUPS} groups: narrow the rows "
            "with filters first.",
        )
    orders = [(order.key, order.descending) for order in query.ordering]
    ordered = {key for key, _ in orders}
    orders += [(key.key, False) for key in query.group_by if key.key not in ordered]
    return _ordered(_records(columns, rows), orders)[query.offset : query.offset + query.limit]


@dataclass(frozen=True)
class Groups:
    """A page of aggregate groups and the number of groups the query produces in all."""

    count: int
    results: list[dict]


def run_groups(spec: DatasetSpec, query: AggregateQuery) -> Groups:
    """Grouped metrics with the number of groups in all, both computed by the database."""
    results = run_aggregate(spec, query)
    if not query.group_by:
        count = 1
    elif len(results) < query.limit and (results or query.offset == 0):
        count = query.offset + len(results)  # the last page: the count is known
    else:
        count = int(fetch(spec, compile_group_count(spec, query))[0][0])
    return Groups(count=count, results=results)
