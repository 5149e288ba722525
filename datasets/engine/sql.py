"""The SQL each backend needs beyond what SQLAlchemy renders by itself: date parts, buckets,
substring matches and NULL order. DuckDB's serves uploads; each kind of SQL source names its own
in its record (datasets/engine/dialects.py)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from datasets.engine import zones


class Dialect:
    """The SQL a backend needs beyond what SQLAlchemy renders by itself: date parts, buckets, NULL order."""

    name = "generic"

    def date_part(self, expr, part: str):
        """year, quarter or month of a date, as an integer."""
        return sa.extract(part, expr)

    def bucket(self, expr, bucket: str):
        """A date bucket as a string: 2024, 2024-Q2, 2024-04, 2024-W14, 2024-04-03."""
        raise NotImplementedError

    def local(self, expr, zone: str):
        """A column of moments as wall-clock times in a zone (its date parts are counted there)."""
        return sa.func.timezone(zones.sql_literal(zone), expr)

    def zoned_bucket(self, expr, bucket: str, zone: str):
        """The date bucket of a column of moments, its days counted in a zone."""
        return self.bucket(self.local(expr, zone), bucket)

    def moment(self, expr):
        """A column of moments as selected: the driver hands each back with its offset, or in UTC."""
        return expr

    def group_keys(self, groups: list) -> list:
        """GROUP BY the select list's labelled group keys: by position (one expression each)."""
        return [sa.literal_column(str(position)) for position in range(1, len(groups) + 1)]

    def number(self, expr):
        """A number column as filters compare it with a float."""
        return expr

    def average_operand(self, expr, type_: str):
        """What an average averages: an integer column as a float (not an integer average)."""
        return sa.cast(expr, sa.Float) if type_ == "integer" else expr

    def bound(self, value):
        """A filter's value (or tuple of values) as the backend's driver binds it."""
        return value

    def in_(self, expr, values: tuple):
        return expr.in_(values)

    def contains(self, expr, value: str):
        return expr.contains(value, autoescape=True)

    def icontains(self, expr, value: str):
        """A case-insensitive substring match (search)."""
        return expr.icontains(value, autoescape=True)

    def startswith(self, expr, value: str):
        return expr.startswith(value, autoescape=True)

    def order(self, expr, descending: bool):
        """Ascending or descending, NULLs last on every backend."""
        return (expr.desc() if descending else expr.asc()).nulls_last()

    def comparable(self, expr, values: tuple) -> tuple:
        """A datetime column and filter values in forms that compare as times: themselves, mostly."""
        return expr, values


def _fmt(text: str):
    # Format strings are Gateway's own constants (never client input), inlined as SQL literals so
    # that the select list and GROUP BY see one expression and compiled statements can be reused.
    assert "'" not in text
    return sa.literal_column(f"'{text}'", sa.String)


class DuckDBDialect(Dialect):
    name = "duckdb"

    def in_(self, expr, values):
        # One list parameter instead of one per value: the compiled statement is reused whatever
        # the number of values.
        return sa.func.list_contains(sa.bindparam(None, list(values)), expr)

    def date_part(self, expr, part):
        return getattr(sa.func, part)(expr)

    def bucket(self, expr, bucket):
        if bucket == "quarter":
            # `||`, not concat(): DuckDB's concat() skips NULLs, which made a NULL date '-Q'.
            return (
                sa.func.strftime(expr, _fmt("%Y"), type_=sa.String)
                + _fmt("-Q")
                + sa.cast(sa.func.quarter(expr), sa.String)
            )
        formats = {"year": "%Y", "month": "%Y-%m", "week": "%G-W%V", "day": "%Y-%m-%d"}
        return sa.func.strftime(expr, _fmt(formats[bucket]))


class PostgresDialect(Dialect):
    name = "postgresql"

    def date_part(self, expr, part):
        return sa.cast(sa.extract(part, expr), sa.Integer)

    def bucket(self, expr, bucket):
        formats = {
            "year": "YYYY",
            "quarter": 'YYYY-"Q"Q',
            "month": "YYYY-MM",
            "week": 'IYYY-"W"IW',
            "day": "YYYY-MM-DD",
        }
        return sa.func.to_char(expr, _fmt(formats[bucket]))


class MySQLDialect(Dialect):
    name = "mysql"

    def date_part(self, expr, part):
        return getattr(sa.func, part)(expr)

    def bucket(self, expr, bucket):
        if bucket == "quarter":
            return sa.func.concat(sa.func.year(expr), _fmt("-Q"), sa.func.quarter(expr))
        formats = {"year": "%Y", "month": "%Y-%m", "week": "%x-W%v", "day": "%Y-%m-%d"}
        return sa.func.date_format(expr, _fmt(formats[bucket]))

    def local(self, expr, zone):
        # Sessions run in UTC (dialects.MySQL.session_start). A named zone needs the server's
        # time zone tables (mysql_tzinfo_to_sql); without them CONVERT_TZ gives NULL.
        if zone in zones.UTC_NAMES:
            return expr
        return sa.func.convert_tz(expr, _fmt("+00:00"), zones.sql_literal(zone))

    def order(self, expr, descending):
        # MySQL has no NULLS LAST: sort on "is null" first.
        return sa.case((expr.is_(None), 1), else_=0), (expr.desc() if descending else expr.asc())


class SQLiteDialect(Dialect):
    name = "sqlite"

    def _int(self, fmt: str, expr):
        return sa.cast(sa.func.strftime(_fmt(fmt), expr), sa.Integer)

    def date_part(self, expr, part):
        if part == "quarter":
            return (self._int("%m", expr) + 2) // 3
        return self._int({"year": "%Y", "month": "%m"}[part], expr)

    def bucket(self, expr, bucket):
        if bucket == "quarter":
            return (
                sa.func.strftime(_fmt("%Y"), expr)
                + _fmt("-Q")
                + sa.cast((self._int("%m", expr) + 2) // 3, sa.String)
            )
        if bucket == "week":
            # SQLite before 3.46 has no %G/%V: the ISO week is the one of the week's Thursday.
            thursday = sa.func.date(expr, _fmt("-3 days"), _fmt("weekday 4"))
            week = (sa.cast(sa.func.strftime(_fmt("%j"), thursday), sa.Integer) - 1) // 7 + 1
            return (
                sa.func.strftime(_fmt("%Y"), thursday)
                + _fmt("-W")
                + sa.func.printf(_fmt("%02d"), week)
            )
        formats = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d"}
        return sa.func.strftime(_fmt(formats[bucket]), expr)

    def contains(self, expr, value):
        # LIKE is case-insensitive in SQLite; instr() matches exactly, as the other backends do.
        return sa.func.instr(expr, value) > 0

    def startswith(self, expr, value):
        return sa.func.substr(expr, 1, len(value)) == value

    def comparable(self, expr, values):
        # SQLite keeps a datetime as text in its writer's format ('2024-06-30 12:00:00' from
        # Django, with 'T', with or without fractions): compared as text, they disagree.
        julian = tuple(sa.func.julianday(sa.literal(value, sa.DateTime())) for value in values)
        return sa.func.julianday(expr), julian


class ClickHouseDialect(Dialect):
    name = "clickhouse"

    def group_keys(self, groups):
        # ClickHouse before 22 has no GROUP BY position: by the select list's aliases instead.
        return [sa.literal_column(group.name) for group in groups]

    def number(self, expr):
        # ClickHouse 18 does not compare a Decimal with a Float64.
        return sa.func.toFloat64(expr)

    def average_operand(self, expr, type_):
        # As a Float64 for decimals too (ClickHouse averages a Decimal to its own scale), with
        # toFloat64, which keeps a NULL (a CAST to Float64 refuses one).
        return sa.func.toFloat64(expr)

    def bound(self, value):
        # No boolean type before ClickHouse 21: a boolean column is a UInt8 of 0 and 1.
        if isinstance(value, tuple):
            return tuple(self.bound(item) for item in value)
        return int(value) if isinstance(value, bool) else value

    def date_part(self, expr, part):
        return {"year": sa.func.toYear, "quarter": sa.func.toQuarter, "month": sa.func.toMonth}[
            part
        ](expr)

    def local(self, expr, zone):
        # toYear, toQuarter and toMonth count in the zone of toTimeZone's result; ClickHouse 18's
        # formatDateTime does not (zoned_bucket passes the zone to each function instead).
        return sa.func.toTimeZone(expr, zones.sql_literal(zone))

    def moment(self, expr):
        # A DateTime('UTC'): the driver gives a plain DateTime in the server's (or this host's) zone
        # without an offset, a DateTime with a zone as an aware datetime.
        return sa.func.toTimeZone(expr, zones.sql_literal(zones.DEFAULT))

    def zoned_bucket(self, expr, bucket, zone):
        return self._bucket(expr, bucket, (zones.sql_literal(zone),))

    def bucket(self, expr, bucket):
        return self._bucket(expr, bucket, ())

    def _bucket(self, expr, bucket, zone: tuple):
        if bucket == "quarter":
            return sa.func.concat(
                sa.func.toString(sa.func.toYear(expr, *zone)),
                _fmt("-Q"),
                sa.func.toString(sa.func.toQuarter(expr, *zone)),
            )
        if bucket == "week":
            # The ISO year of the week (2024-12-30 is in 2025-W01): formatDateTime has no %G.
            return sa.func.concat(
                sa.func.toString(sa.func.toISOYear(expr, *zone)),
                _fmt("-W"),
                sa.func.formatDateTime(expr, _fmt("%V"), *zone),
            )
        formats = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d"}
        return sa.func.formatDateTime(expr, _fmt(formats[bucket]), *zone)

    # ClickHouse's LIKE has no ESCAPE clause: substring functions match exactly instead.
    def contains(self, expr, value):
        return sa.func.position(expr, value) > 0

    def icontains(self, expr, value):
        return sa.func.positionCaseInsensitiveUTF8(expr, value) > 0

    def startswith(self, expr, value):
        return sa.func.startsWith(expr, value) == 1


# Statement text, compiled once per shape

_compiled: OrderedDict = OrderedDict()
_COMPILED_MAX = 512
_compiled_lock = threading.Lock()


def statement_sql(
    dialect: sa.Dialect, statement: sa.Select
) -> tuple[str, list | Mapping[str, Any]] | None:
    """SQL text of a statement in a SQLAlchemy dialect, with its parameters in the dialect's
    paramstyle (a list when positional); statements of the same shape compile once.

    Compiling costs about a millisecond, more than a row lookup: SQLAlchemy's cache key tells
    statements apart by shape and hands back this statement's own values. None for a statement
    whose text depends on its values (an IN list expands at execution): it runs through
    SQLAlchemy's own execution.
    """
    cache_key = statement._generate_cache_key()
    assert cache_key is not None  # every construct the compiler builds has a cache key
    key = (dialect.name, dialect.paramstyle, cache_key.key)
    entry = _compiled.get(key)
    if entry is None:
        compiled = dialect.statement_compiler(dialect, statement, cache_key=cache_key)
        reusable = not (compiled.post_compile_params or compiled.literal_execute_params)
        entry = (str(compiled), compiled, reusable)
        with _compiled_lock:
            _compiled[key] = entry
            if len(_compiled) > _COMPILED_MAX:
                _compiled.popitem(last=False)
    sql, compiled, reusable = entry
    if not reusable:
        return None
    values = compiled.construct_params(extracted_parameters=cache_key.bindparams)
    if compiled.positional:
        return sql, [values[name] for name in compiled.positiontup or ()]
    return sql, values
