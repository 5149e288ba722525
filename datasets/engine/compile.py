"""Query objects -> SQLAlchemy Core statements for a backend: identifiers quoted, values bound."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from datasets.engine.dialects import source_dialect
from datasets.engine.grammar import METRICS_BY_NAME, OPERATORS, Operand
from datasets.engine.query import AggregateQuery, Filter, GroupKey, Metric, RowsQuery
from datasets.engine.spec import ColumnSpec, DatasetSpec
from datasets.engine.sql import Dialect, DuckDBDialect

DUCKDB = DuckDBDialect()

_TYPES = {
    "string": sa.String,
    "integer": sa.BigInteger,
    "number": sa.Float,
    "boolean": sa.Boolean,
    "date": sa.Date,
    "datetime": sa.DateTime,
}


def sql_dialect(spec: DatasetSpec) -> Dialect:
    """The SQL dialect of the dataset's backend: DuckDB's for uploads, else its source's."""
    if spec.source is None:
        return DUCKDB
    return source_dialect(spec.source.kind).sql


def table_of(spec: DatasetSpec) -> sa.TableClause:
    """The dataset's table, with every column typed (hidden ones too: row filters may use them)."""
    columns = [sa.column(column.physical, _TYPES[column.type]()) for column in spec.all_columns]
    return sa.table(spec.table, *columns, schema=spec.schema_name or None)


def _expr(table: sa.TableClause, column: ColumnSpec):
    return table.c[column.physical]


def _selected(dialect: Dialect, table: sa.TableClause, column: ColumnSpec):
    """A column as a query returns it: moments in a form the driver hands back with an offset."""
    expr = _expr(table, column)
    return dialect.moment(expr) if column.instant else expr


def _condition(dialect: Dialect, table: sa.TableClause, item: Filter, zone: str):
    expr = _expr(table, item.column)
    record = OPERATORS[item.op]
    value = dialect.bound(item.value)
    if item.column.instant and record.operand == Operand.PART:
        expr = dialect.local(expr, zone)  # the year of a moment is its year in the dataset's zone
    if item.column.type == "number" and record.operand in (Operand.VALUE, Operand.VALUES):
        expr = dialect.number(expr)
    if item.column.type == "datetime" and record.operand in (Operand.VALUE, Operand.VALUES):
        listed = record.operand == Operand.VALUES
        expr, values = dialect.comparable(expr, value if listed else (value,))
        value = values if listed else values[0]
    return record.sql(dialect, expr, value)


def _where(
    dialect: Dialect, spec: DatasetSpec, table: sa.TableClause, filters, search: str | None
) -> list:
    conditions = [_condition(dialect, table, item, spec.time_zone) for item in filters]
    if search:
        searchable = [c for c in spec.columns if c.searchable and not c.protected]
        conditions.append(sa.or_(*(dialect.icontains(_expr(table, c), search) for c in searchable)))
    return conditions


def _ordering(dialect: Dialect, expressions: dict, ordering) -> list:
    clauses: list[sa.ColumnElement[Any]] = []
    for order in ordering:
        clause = dialect.order(expressions[order.key], order.descending)
        clauses.extend(clause if isinstance(clause, tuple) else (clause,))
    return clauses


def compile_rows(spec: DatasetSpec, query: RowsQuery) -> sa.Select:
    """SELECT the page's fields, filtered, ordered, limited."""
    dialect = sql_dialect(spec)
    table = table_of(spec)
    expressions = {column.name: _expr(table, column) for column in spec.all_columns}
    return (
        sa.select(*(_selected(dialect, table, column) for column in query.fields))
        .where(*_where(dialect, spec, table, query.filters, query.search))
        .order_by(*_ordering(dialect, expressions, query.ordering))
        .limit(query.limit)
        .offset(query.offset)
    )


def compile_count(spec: DatasetSpec, query: RowsQuery) -> sa.Select:
    """SELECT count(*) of the rows the query matches."""
    dialect = sql_dialect(spec)
    table = table_of(spec)
    return (
        sa.select(sa.func.count())
        .select_from(table)
        .where(*_where(dialect, spec, table, query.filters, query.search))
    )


def compile_row(spec: DatasetSpec, key, filters: tuple[Filter, ...]) -> sa.Select:
    """SELECT the row whose primary key is `key`, within the key's row filters."""
    dialect = sql_dialect(spec)
    table = table_of(spec)
    pk = spec.any_column(spec.primary_key or "")
    assert pk is not None, "only a dataset with a primary key has rows by key"
    return (
        sa.select(*(_selected(dialect, table, column) for column in spec.columns))
        .where(_expr(table, pk) == key, *_where(dialect, spec, table, filters, None))
        .limit(2)
    )


def _group_expr(dialect: Dialect, table: sa.TableClause, key: GroupKey, zone: str):
    if key.bucket is None:
        return _selected(dialect, table, key.column)
    expr = _expr(table, key.column)
    if key.column.instant:
        return dialect.zoned_bucket(expr, key.bucket, zone)
    return dialect.bucket(expr, key.bucket)


def _metric_expr(dialect: Dialect, table: sa.TableClause, metric: Metric):
    record = METRICS_BY_NAME[metric.function]
    if record.sql is None or metric.column is None:  # count, the one metric without a column
        return sa.func.count()
    value = record.sql(dialect, _expr(table, metric.column), metric.column)
    if metric.column.instant and record.result == "column":  # the earliest or latest moment
        return dialect.moment(value)
    return value


# Groups an aggregate grouped by a hashed column may have: they are ordered after the query.
MAX_HASHED_GROUPS = 100_000


def hashed_groups(query: AggregateQuery) -> bool:
    """Is the query grouped by a hashed column (its order and limit then applied to digests)?"""
    return any(key.column.pii == "hash" for key in query.group_by)


def compile_group_count(spec: DatasetSpec, query: AggregateQuery) -> sa.Select:
    """SELECT the number of groups the aggregate produces (1 without group_by)."""
    dialect = sql_dialect(spec)
    table = table_of(spec)
    if not query.group_by:
        return sa.select(sa.literal(1))
    groups = [
        _group_expr(dialect, table, key, spec.time_zone).label(f"g{i}")
        for i, key in enumerate(query.group_by)
    ]
    inner = (
        sa.select(*groups)
        .select_from(table)
        .where(*_where(dialect, spec, table, query.filters, query.search))
        .group_by(*dialect.group_keys(groups))
        .subquery("groups")
    )
    return sa.select(sa.func.count()).select_from(inner)


def compile_aggregate(spec: DatasetSpec, query: AggregateQuery) -> sa.Select:
    """SELECT group keys and metrics, grouped by position (or label), ordered by result key."""
    dialect = sql_dialect(spec)
    table = table_of(spec)
    groups = [
        _group_expr(dialect, table, key, spec.time_zone).label(f"g{i}")
        for i, key in enumerate(query.group_by)
    ]
    metrics = [
        _metric_expr(dialect, table, metric).label(f"m{i}")
        for i, metric in enumerate(query.metrics)
    ]
    labels = {key.key: label for key, label in zip(query.group_by, groups, strict=True)}
    labels.update({metric.key: label for metric, label in zip(query.metrics, metrics, strict=True)})
    statement = (
        sa.select(*groups, *metrics)
        .select_from(table)
        .where(*_where(dialect, spec, table, query.filters, query.search))
    )
    if groups:
        statement = statement.group_by(*dialect.group_keys(groups))
    if hashed_groups(query):
        # Digests are computed here, not in the database: ordering on the raw values, even
        # only to choose which groups a limit keeps, would tell their order. Every group is
        # fetched (up to the bound) and execute.run_aggregate orders and limits them.
        return statement.limit(MAX_HASHED_GROUPS + 1)
    order_exprs: dict[str, sa.ColumnElement[Any]] = {
        key: sa.literal_column(label.name) for key, label in labels.items()
    }
    # A metric is ordered by its expression, not its alias: MariaDB refuses an alias of an
    # aggregate inside another expression (the CASE that puts NULLs last), error 1247.
    order_exprs.update(
        {metric.key: _metric_expr(dialect, table, metric) for metric in query.metrics}
    )
    return (
        statement.order_by(*_ordering(dialect, order_exprs, query.ordering))
        .limit(query.limit)
        .offset(query.offset)
    )
