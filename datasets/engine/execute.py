"""Running compiled queries on a dataset's backend and turning rows into JSON-ready values."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import duckdb
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from datasets.engine.compile import compile_aggregate, compile_count, compile_row, compile_rows
from datasets.engine.connections import duckdb_files, source_engine
from datasets.engine.errors import NotFound, SourceUnavailable
from datasets.engine.parse import parse_key_value
from datasets.engine.pii import PROTECT
from datasets.engine.query import AggregateQuery, Filter, GroupKey, RowsQuery
from datasets.engine.spec import ColumnSpec, DatasetSpec, SourceSpec

logger = logging.getLogger("gateway")

# DuckDB speaks PostgreSQL's SQL closely enough for the statements the compiler builds.
_DUCKDB_DIALECT = postgresql.dialect(paramstyle="qmark")
_TIMEOUT_CODES = {
    1969,
    3024,
    1317,
}  # MariaDB max_statement_time, MySQL max_execution_time, interrupted


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


def value_converter(column: ColumnSpec) -> Callable:
    """JSON-ready output of a column's values, personal data masked or hashed."""
    convert = _converter(column.type)
    protect = PROTECT.get(column.pii)
    if protect is None:
        return lambda value: None if value is None else convert(value)
    return lambda value: protect(None if value is None else convert(value))


def _records(columns: list[tuple[str, Callable]], rows: list[tuple]) -> list[dict]:
    return [
        {name: convert(value) for (name, convert), value in zip(columns, row, strict=True)}
        for row in rows
    ]


# Backends


_compiled: OrderedDict = OrderedDict()
_COMPILED_MAX = 512
_compiled_lock = threading.Lock()


def _duckdb_sql(statement: sa.Select) -> tuple[str, list]:
    """SQL text and positional parameters; statements of the same shape compile once.

    Compiling costs about a millisecond, more than a row lookup: SQLAlchemy's cache key tells
    statements apart by shape and hands back this statement's own values.
    """
    cache_key = statement._generate_cache_key()
    entry = _compiled.get(cache_key.key)
    if entry is None:
        compiled = _DUCKDB_DIALECT.statement_compiler(
            _DUCKDB_DIALECT, statement, cache_key=cache_key
        )
        entry = (str(compiled), compiled)
        with _compiled_lock:
            _compiled[cache_key.key] = entry
            if len(_compiled) > _COMPILED_MAX:
                _compiled.popitem(last=False)
    sql, compiled = entry
    values = compiled.construct_params(extracted_parameters=cache_key.bindparams)
    return sql, [values[name] for name in compiled.positiontup]


def _fetch_duckdb(path: str, statement: sa.Select) -> list[tuple]:
    sql, params = _duckdb_sql(statement)
    try:
        # fetchall(): a cursor with an unfinished result refuses new work.
        return duckdb_files.cursor(path).execute(sql, params).fetchall()
    except (duckdb.IOException, duckdb.ConnectionException) as error:
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


def _is_timeout(error: sa.exc.DBAPIError) -> bool:
    original = error.orig
    if type(original).__name__ == "QueryCanceled":
        return True
    code = original.args[0] if getattr(original, "args", None) else None
    return code in _TIMEOUT_CODES or "interrupted" in str(original).lower()


def _fetch_sql(source: SourceSpec, statement: sa.Select) -> list[tuple]:
    engine = source_engine(source)
    try:
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            deadline = getattr(raw, "gateway_deadline", None)
            if deadline is not None:
                deadline["deadline"] = time.monotonic() + source.statement_timeout
            try:
                return connection.execute(statement).all()
            finally:
                if deadline is not None:
                    deadline["deadline"] = None
    except sa.exc.DBAPIError as error:
        if _is_timeout(error):
            raise SourceUnavailable(
                f"The query took longer than the source's {source.statement_timeout} s limit: narrow it with filters, or retry later.",
                code="source_timeout",
            ) from None
        logger.warning("Source %s failed: %s", source.id, error.orig)
        raise SourceUnavailable("The dataset's database is not answering; retry shortly.") from None
    except sa.exc.TimeoutError:
        raise SourceUnavailable("The dataset's database is busy; retry shortly.") from None


def fetch(spec: DatasetSpec, statement: sa.Select) -> list[tuple]:
    """Rows of a statement, from the dataset's own backend."""
    if spec.source is None:
        return _fetch_duckdb(spec.file_path, statement)
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
    columns = [(column.name, value_converter(column)) for column in query.fields]
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
    columns = [(column.name, value_converter(column)) for column in spec.columns]
    return _records(columns, rows[:1])[0]


def _metric_converter(metric) -> Callable:
    if metric.function in ("count", "count_distinct"):
        return lambda value: int(value or 0)
    if metric.function == "sum" and metric.column.type == "integer":
        return lambda value: None if value is None else int(value)
    if metric.function in ("sum", "avg"):
        # Sums of binary floats carry noise in the last digits (2085670.3000000007).
        return lambda value: None if value is None else float(f"{float(value):.12g}")
    return value_converter(ColumnSpec(name="", physical="", type=metric.column.type))


def _group_converter(key: GroupKey) -> Callable:
    if key.bucket is None:
        return value_converter(key.column)
    protect = PROTECT.get(key.column.pii, str)
    return lambda value: None if value is None else protect(str(value))


def run_aggregate(spec: DatasetSpec, query: AggregateQuery) -> list[dict]:
    """Grouped metrics, computed by the database."""
    rows = fetch(spec, compile_aggregate(spec, query))
    columns = [(key.key, _group_converter(key)) for key in query.group_by]
    columns += [(metric.key, _metric_converter(metric)) for metric in query.metrics]
    results = _records(columns, rows)
    protected = {key.key for key in query.group_by if key.column.protected}
    if protected & {order.key for order in query.ordering}:
        # The database ordered on the raw values; the client sees digests, ordered as such.
        for order in reversed(query.ordering):
            present = [row for row in results if row[order.key] is not None]
            present.sort(key=lambda row, k=order.key: row[k], reverse=order.descending)
            results = present + [row for row in results if row[order.key] is None]
    return results
