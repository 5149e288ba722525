"""What Gateway knows of each kind of SQL source, in one record per dialect.

A record says how a source URL of its kind is read and checked (the names its scheme goes by, the
driver, the default port, the options a URL may carry), how a session is made read-only with a
statement timeout, how discovery finds tables, and which SQL dialect of the compiler
(datasets/engine/sql.py) writes its queries. Everything that differs between PostgreSQL,
MySQL/MariaDB and SQLite is here: a new kind of source is one more record and one more SQL dialect.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from pymysql.constants import CLIENT
from sqlalchemy.engine import URL, Engine

from datasets.engine.sql import (
    ClickHouseDialect,
    Dialect,
    MySQLDialect,
    PostgresDialect,
    SQLiteDialect,
    statement_sql,
)

CONNECT_TIMEOUT = 5
OPTION_VALUE_MAX_CHARS = 200

OptionCheck = Callable[[str], "str | None"]


# -- The checks of a URL option's value: None when valid, else what a valid value looks like ----


def _choice(*values: str) -> OptionCheck:
    def check(value: str) -> str | None:
        return None if value in values else "one of " + ", ".join(values)

    return check


def _whole(low: int, high: int) -> OptionCheck:
    def check(value: str) -> str | None:
        ok = value.isdigit() and low <= int(value) <= high
        return None if ok else f"a whole number from {low} to {high}"

    return check


def _text(value: str) -> str | None:
    ok = len(value) <= OPTION_VALUE_MAX_CHARS and value.isprintable()
    return None if ok else f"printable text of at most {OPTION_VALUE_MAX_CHARS} characters"


def _flag(value: str) -> str | None:
    return _choice("true", "false", "1", "0")(value.lower())


def _charset(value: str) -> str | None:
    return None if re.fullmatch(r"[a-z0-9_]{1,32}", value) else "a character set such as utf8mb4"


class SourceDialect:
    """One kind of SQL source. Subclasses set the attributes and override the hooks they need."""

    kind: str  # the value of Source.kind
    label: str  # as people name it
    driver: str  # SQLAlchemy's drivername for Gateway's driver
    url_names: tuple[str, ...]  # URL schemes (SQLAlchemy backend names) meaning this kind
    # Words in the Django database ENGINEs of this kind (Gateway's own database, and wrappers of
    # Django's backends such as connection poolers or metrics).
    django_engines: tuple[str, ...] = ()
    default_port = 0  # 0: a file, not a server
    example_url: str
    sql: Dialect  # the compiler's SQL for this kind
    # The driver options a URL may carry, each with the check of its value. Anything else is
    # refused: options reach the driver as they are, and some would override what Gateway
    # enforces (another host or database, read-only off, a file of this machine sent).
    url_options: Mapping[str, OptionCheck] = {}
    needs_database = False  # the URL must name a database
    named_schemas = False  # tables live in schemas other than the default one
    materialized_views = False
    database_names_case_insensitive = False
    # A query naming the server and database, compared after connecting with the same query on
    # Gateway's own database: catches Gateway's own database reached under another name.
    identity_sql: str | None = None
    pooled = True
    # Check a pooled connection before each use (SQLAlchemy's pre-ping: one round trip).
    pre_ping = True
    # Columns may have no declared type: the storage class of a stored value says what they hold.
    untyped_columns = False
    # A query of the server's own time zone (a new dataset's default zone); None: UTC.
    zone_sql: str | None = None
    # Counting dates in a named zone needs data the server may lack (MySQL's time zone tables):
    # check a zone before a dataset uses it.
    zones_may_be_missing = False

    def instant(self, sql_type: sa.types.TypeEngine) -> bool:
        """Does a datetime column of this SQL type hold moments (a timestamp with a time zone)?"""
        return bool(getattr(sql_type, "timezone", False))  # TIMESTAMP WITH TIME ZONE

    def column_zone(self, sql_type: sa.types.TypeEngine) -> str:
        """The zone a column's type says its moments are shown in ("" when it names none)."""
        return ""

    @property
    def is_file(self) -> bool:
        return not self.default_port

    def driver_url(self, url: URL, timeout: int) -> URL:
        """The URL Gateway's driver connects to, for sessions with this statement timeout."""
        return url.set(drivername=self.driver)

    def connect_args(self, timeout: int) -> dict:
        """Driver arguments, under those the URL gives itself."""
        return {}

    def forced_connect_args(self) -> dict:
        """Driver arguments that win over the URL's."""
        return {}

    def session_start(self, dbapi_connection, timeout: int) -> None:
        """Make a new session read-only, with the statement timeout."""
        raise NotImplementedError

    def engine_made(self, engine: Engine) -> None:
        """Anything to attach to a new engine (event listeners)."""

    def is_timeout(self, error: BaseException) -> bool:
        """Is this driver error the statement timeout (or an interrupt) ending a query?"""
        return "interrupted" in str(error).lower()

    def run(self, connection: sa.Connection, statement: sa.Select) -> Sequence[Sequence[Any]]:
        """The rows of a statement on a pooled connection; driver errors raise DBAPIError."""
        return connection.execute(statement).all()


class PostgreSQL(SourceDialect):
    kind = "postgresql"
    label = "PostgreSQL"
    driver = "postgresql+psycopg"
    url_names = ("postgresql", "postgres")
    django_engines = ("postgres", "postgis")
    default_port = 5432
    example_url = "postgresql://user:pass@host:5432/db"
    sql = PostgresDialect()
    url_options = {
        "sslmode": _choice("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
        "sslrootcert": _text,
        "sslcert": _text,
        "sslkey": _text,
        "sslcrl": _text,
        "channel_binding": _choice("disable", "prefer", "require"),
        "gssencmode": _choice("disable", "prefer", "require"),
        "connect_timeout": _whole(1, 60),
        "application_name": _text,
        "target_session_attrs": _choice(
            "any", "read-write", "read-only", "primary", "standby", "prefer-standby"
        ),
        "keepalives": _choice("0", "1"),
        "keepalives_idle": _whole(1, 3600),
        "keepalives_interval": _whole(1, 3600),
        "keepalives_count": _whole(1, 100),
    }
    named_schemas = True
    materialized_views = True
    identity_sql = (
        "SELECT current_database(), CAST(EXTRACT(EPOCH FROM pg_postmaster_start_time()) AS text)"
    )
    zone_sql = "SELECT current_setting('TimeZone')"

    def connect_args(self, timeout):
        return {"connect_timeout": CONNECT_TIMEOUT}

    def session_start(self, dbapi_connection, timeout):
        # Set per session, not per statement; psycopg in autocommit=False wraps queries in
        # transactions that inherit default_transaction_read_only.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = on")
            cursor.execute(f"SET statement_timeout = {int(timeout) * 1000}")
        dbapi_connection.commit()

    def is_timeout(self, error):
        return type(error).__name__ == "QueryCanceled" or super().is_timeout(error)


class MySQL(SourceDialect):
    kind = "mysql"
    label = "MySQL/MariaDB"
    driver = "mysql+pymysql"
    url_names = ("mysql", "mariadb")
    django_engines = ("mysql",)
    default_port = 3306
    example_url = "mysql://user:pass@host:3306/db"
    sql = MySQLDialect()
    url_options = {
        "charset": _charset,
        "connect_timeout": _whole(1, 60),
        "read_timeout": _whole(1, 3600),
        "write_timeout": _whole(1, 3600),
        "ssl_ca": _text,
        "ssl_capath": _text,
        "ssl_cert": _text,
        "ssl_key": _text,
        "ssl_cipher": _text,
        "ssl_check_hostname": _flag,
    }
    needs_database = True
    # Database names are case-insensitive on some systems: compared as such.
    database_names_case_insensitive = True
    identity_sql = "SELECT DATABASE(), @@hostname, @@port, @@datadir"
    zone_sql = "SELECT IF(@@global.time_zone = 'SYSTEM', @@system_time_zone, @@global.time_zone)"
    zones_may_be_missing = True

    def instant(self, sql_type):
        # A TIMESTAMP is stored in UTC and read in the session's zone; a DATETIME is wall-clock.
        return isinstance(sql_type, sa.TIMESTAMP)

    def connect_args(self, timeout):
        # The server enforces the statement timeout; these bound a server that stops answering.
        return {
            "connect_timeout": CONNECT_TIMEOUT,
            "charset": "utf8mb4",
            "read_timeout": int(timeout) + CONNECT_TIMEOUT,
            "write_timeout": int(timeout) + CONNECT_TIMEOUT,
        }

    def forced_connect_args(self):
        return {"local_infile": False}

    def session_start(self, dbapi_connection, timeout):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            # TIMESTAMP values (moments) are read and compared in UTC; datasets/engine/zones.py
            # shows them in the dataset's zone.
            cursor.execute("SET SESSION time_zone = '+00:00'")
            cursor.execute("SELECT VERSION()")
            version = cursor.fetchone()[0]
            if "MariaDB" in version:
                cursor.execute(f"SET SESSION max_statement_time = {int(timeout)}")
            else:
                cursor.execute(f"SET SESSION max_execution_time = {int(timeout) * 1000}")

    def engine_made(self, engine):
        sa.event.listen(engine, "do_connect", _no_local_files)

    # MariaDB's max_statement_time, MySQL's max_execution_time, a query interrupted.
    TIMEOUT_CODES = frozenset({1969, 3024, 1317})

    def is_timeout(self, error):
        args = getattr(error, "args", None)
        return (args[0] if args else None) in self.TIMEOUT_CODES or super().is_timeout(error)


def _no_local_files(dialect, connection_record, cargs, cparams) -> None:
    """MySQL: never offer to send a file of this machine (LOAD DATA LOCAL INFILE), whatever the URL.

    PyMySQL refuses a server's file request unless `local_infile` is on, and the LOCAL_FILES
    capability tells a server it may ask: both are forced off on every connection.
    """
    cparams["local_infile"] = False
    cparams["client_flag"] = int(cparams.get("client_flag", 0)) & ~CLIENT.LOCAL_FILES


class SQLiteConnection(sqlite3.Connection):
    """sqlite3's connection, with room for the deadline of the statement it runs."""

    gateway_deadline: dict
    gateway_timeout: int


class SQLite(SourceDialect):
    kind = "sqlite"
    label = "SQLite"
    driver = "sqlite+pysqlite"
    url_names = ("sqlite",)
    django_engines = ("sqlite", "spatialite")
    example_url = "sqlite:////absolute/path.db"
    sql = SQLiteDialect()
    # A SQLite source is opened read-only whatever the URL says: it takes no option.
    url_options: Mapping[str, OptionCheck] = {}
    pooled = False
    untyped_columns = True

    def driver_url(self, url, timeout):
        url = super().driver_url(url, timeout)
        if url.database and not url.database.startswith("file:"):
            # Opened read-only at the file level: a write fails however it is attempted.
            # Percent-encoded: a `?` or `#` in the file name must not start URI parameters.
            path = quote(url.database, safe="/")
            url = url.set(database=f"file:{path}?mode=ro", query={"uri": "true"})
        return url

    def forced_connect_args(self):
        return {"check_same_thread": False, "factory": SQLiteConnection}

    def session_start(self, dbapi_connection, timeout):
        dbapi_connection.execute("PRAGMA query_only = 1")
        # SQLite has no statement timeout: a progress handler interrupts a statement past its
        # deadline, which the engine sets before each statement.
        state = {"deadline": None}

        def progress() -> int:
            deadline = state["deadline"]
            return 1 if deadline is not None and time.monotonic() > deadline else 0

        dbapi_connection.set_progress_handler(progress, 10_000)
        dbapi_connection.gateway_deadline = state
        dbapi_connection.gateway_timeout = timeout


class ClickHouse(SourceDialect):
    kind = "clickhouse"
    label = "ClickHouse"
    driver = "clickhouse+native"  # clickhouse-sqlalchemy over clickhouse-driver's native protocol
    url_names = ("clickhouse",)
    default_port = 9000
    example_url = "clickhouse://user:pass@host:9000/db"
    sql = ClickHouseDialect()
    url_options = {
        "secure": _flag,
        "verify": _flag,
        "ca_certs": _text,
        "connect_timeout": _whole(1, 60),
        "send_receive_timeout": _whole(1, 3600),
    }
    # clickhouse-driver checks (and reopens) its connection before every query with the native
    # protocol's ping; SQLAlchemy's pre-ping would add a whole SELECT 1 query to each call.
    pre_ping = False
    # ClickHouse's codes: TIMEOUT_EXCEEDED, QUERY_WAS_CANCELLED.
    TIMEOUT_CODES = frozenset({159, 394})
    zone_sql = "SELECT timezone()"

    def instant(self, sql_type):
        return True  # a DateTime is a Unix time, whatever zone it is shown in

    def column_zone(self, sql_type):
        # DateTime('America/New_York'), maybe inside Nullable(...): reflected with its quotes.
        while (nested := getattr(sql_type, "nested_type", None)) is not None:
            sql_type = nested
        zone = getattr(sql_type, "timezone", None)
        return zone.strip("'") if isinstance(zone, str) else ""

    def driver_url(self, url, timeout):
        # Settings in the URL go with every query: read-only (readonly=1 also forbids a query
        # from changing them) and the statement timeout as ClickHouse's own execution limit.
        query = {
            **url.query,
            "readonly": "1",
            "max_execution_time": str(int(timeout)),
            "connect_timeout": url.query.get("connect_timeout", str(CONNECT_TIMEOUT)),
            "send_receive_timeout": url.query.get("send_receive_timeout", str(int(timeout) + 5)),
        }
        return super().driver_url(url, timeout).set(query=query)

    def session_start(self, dbapi_connection, timeout):
        pass  # the URL's settings apply to every query of the session

    def engine_made(self, engine):
        sa.event.listen(engine, "handle_error", _clickhouse_error)
        sa.event.listen(engine, "do_connect", _clickhouse_connect)

    def is_timeout(self, error):
        return getattr(error, "code", None) in self.TIMEOUT_CODES or super().is_timeout(error)

    def run(self, connection, statement):
        # Straight to the driver with SQL compiled once per shape: SQLAlchemy's execution and
        # result handling cost about a millisecond a query, a tenth of a typical aggregate here.
        # Values come back as the driver makes them, as through SQLAlchemy (no type of the
        # compiler's has a result processor for this dialect).
        compiled = statement_sql(connection.dialect, statement)
        if compiled is None:
            return super().run(connection, statement)
        sql, params = compiled
        from clickhouse_driver.errors import Error

        try:
            return connection.connection.dbapi_connection.transport.execute(sql, params)
        except Error as error:
            raise sa.exc.DBAPIError(sql, params, error) from None


@functools.cache
def _clickhouse_connection_class():
    """clickhouse-sqlalchemy's connection, with cursors that leave the session open: its own
    cursor closes the connection with itself, so that each query would open a new one (a TCP
    handshake and the native protocol's hello, about 1 ms) despite the pool. Made once, on first
    use: clickhouse-sqlalchemy is imported only where ClickHouse is served."""
    from clickhouse_sqlalchemy.drivers.native import connector

    class Cursor(connector.Cursor):
        def close(self) -> None:
            self._reset_state()

    class Connection(connector.Connection):
        def cursor(self):
            return Cursor(self)

        def close(self) -> None:
            self.transport.disconnect()

    return Connection


def _clickhouse_connect(dialect, connection_record, cargs, cparams):
    return _clickhouse_connection_class()(*cargs, **cparams)


def _clickhouse_error(context):
    """clickhouse-sqlalchemy raises its own exception, outside the DB-API's hierarchy: made the
    DBAPIError every other driver's errors become, around the server's own error (its code)."""
    error = context.original_exception
    if isinstance(error, sa.exc.DBAPIError) or type(error).__name__ != "DatabaseException":
        return None
    original = error.args[0] if error.args and isinstance(error.args[0], Exception) else error
    return sa.exc.DBAPIError(context.statement, context.parameters, original)


SOURCE_DIALECTS: dict[str, SourceDialect] = {
    dialect.kind: dialect for dialect in (PostgreSQL(), MySQL(), SQLite(), ClickHouse())
}
_BY_URL_NAME = {name: dialect for dialect in SOURCE_DIALECTS.values() for name in dialect.url_names}


def source_dialect(kind: str) -> SourceDialect:
    """The record of a kind of source (Source.kind)."""
    return SOURCE_DIALECTS[kind]


def dialect_of_url(url: str | URL) -> SourceDialect:
    """The record of a connection URL's kind; ValueError for a URL of no kind Gateway serves."""
    examples = ", ".join(dialect.example_url for dialect in SOURCE_DIALECTS.values())
    try:
        backend = sa.engine.make_url(url).get_backend_name()
    except Exception:
        shown = str(url).split("@")[-1]
        raise ValueError(f"Not a database URL: {shown!r}. Use {examples}.") from None
    dialect = _BY_URL_NAME.get(backend)
    if dialect is None:
        labels = ", ".join(d.label for d in SOURCE_DIALECTS.values())
        raise ValueError(f"Unsupported database {backend!r}: use {labels}.")
    return dialect


def dialect_of_django_engine(engine: str) -> SourceDialect | None:
    """The record of a Django database ENGINE (Gateway's own database), None for another."""
    for dialect in SOURCE_DIALECTS.values():
        if any(word in engine for word in dialect.django_engines):
            return dialect
    return None
