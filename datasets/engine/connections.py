"""Connections the engine queries through: one pooled, read-only engine per foreign source, and one
read-only DuckDB connection per dataset file, both kept open for the life of the process."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

import duckdb
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from datasets.engine.dialects import CONNECT_TIMEOUT, SourceDialect, dialect_of_url
from datasets.engine.spec import SourceSpec

_engines: dict[tuple[int, str], Engine] = {}
_engines_lock = threading.Lock()


def source_kind(url: str) -> str:
    """The kind of source (postgresql, mysql, sqlite) of a connection URL; ValueError otherwise."""
    return dialect_of_url(url).kind


def url_with_password(url: str, password: str) -> str:
    """A URL stored without its password, with the password put back (for connecting only)."""
    parsed = make_url(url)
    if password:
        parsed = parsed.set(password=password)
    return parsed.render_as_string(hide_password=False)


def driver_url(url: str, timeout: int = 10) -> sa.URL:
    """The URL with the driver Gateway uses for its kind (psycopg 3, PyMySQL, sqlite3, ...)."""
    return dialect_of_url(url).driver_url(make_url(url), timeout)


def _read_only_session(dialect: SourceDialect, timeout: int):
    """A connect hook that makes every session read-only with a statement timeout."""

    def on_connect(dbapi_connection, connection_record) -> None:
        dialect.session_start(dbapi_connection, timeout)

    return on_connect


def source_engine(source: SourceSpec) -> Engine:
    """The pooled, read-only engine of a source (rebuilt when the source is edited)."""
    key = (source.id, source.stamp)
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            for old in [k for k in _engines if k[0] == source.id]:
                _engines.pop(old).dispose()
            engine = connect(source.url, timeout=source.statement_timeout, pooled=True)
            _engines[key] = engine
    return engine


def connect(url: str, *, timeout: int = 10, pooled: bool = False) -> Engine:
    """An engine for a source URL, read-only with a statement timeout on every connection."""
    dialect = dialect_of_url(url)
    target = dialect.driver_url(make_url(url), timeout)
    # An option written in the URL wins over a default (the URL's options are checked when the
    # source is added: see SourceDialect.url_options).
    connect_args = {
        key: value
        for key, value in dialect.connect_args(timeout).items()
        if key not in target.query
    }
    connect_args.update(dialect.forced_connect_args())
    options: dict = {"connect_args": connect_args}
    if pooled and dialect.pooled:
        options.update(
            pool_size=5,
            max_overflow=5,
            pool_pre_ping=dialect.pre_ping,
            pool_recycle=1800,
            pool_timeout=CONNECT_TIMEOUT,
        )
    elif not pooled:
        options["poolclass"] = NullPool
    engine = sa.create_engine(target, **options)
    dialect.engine_made(engine)
    sa.event.listen(engine, "connect", _read_only_session(dialect, timeout))
    return engine


def dispose_all() -> None:
    """Close every pooled connection of this process (tests, and after fork)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _dataset_of(path: str) -> str:
    """Every version of a dataset lives in the dataset's own folder."""
    return os.path.dirname(path)


class FileGone(OSError):
    """The version file was removed (evicted from this host's cache) since it was opened."""


class DuckDBFiles:
    """Read-only DuckDB connections per dataset file, one per process, a cursor per thread.

    Beside each connection the process keeps a descriptor of the file, on which `reading` holds a
    shared lock while a query runs: the cache of versions fetched from the object store never
    evicts a file a query is reading (datasets/version_cache.py), and a file evicted since it
    was opened is noticed (FileGone) instead of queried.
    """

    def __init__(self) -> None:
        self._connections: dict[str, duckdb.DuckDBPyConnection] = {}
        self._handles: dict[str, int] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def cursor(self, path: str) -> duckdb.DuckDBPyConnection:
        """A cursor on the file, for this thread; opening a file costs 12-16 ms, so it is done once."""
        cursors = self._local.__dict__.setdefault("cursors", {})
        entry = cursors.get(path)
        # A cursor closes with its connection (a retired file's): this thread then opens anew.
        if entry is None or self._connections.get(path) is not entry[0]:
            connection = self._connection(path)
            for other in [p for p in cursors if _dataset_of(p) == _dataset_of(path)]:
                del cursors[other]
            entry = cursors[path] = (connection, connection.cursor())
        return entry[1]

    @contextlib.contextmanager
    def reading(self, path: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's cursor on the file, with the file held against eviction meanwhile."""
        cursor = self.cursor(path)
        handle = self._handles.get(path)
        try:
            if handle is None:
                raise OSError("closed meanwhile")
            fcntl.flock(handle, fcntl.LOCK_SH)
        except OSError:
            raise FileGone(path) from None
        try:
            if os.fstat(handle).st_nlink == 0:
                raise FileGone(path)
            yield cursor
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _connection(self, path: str) -> duckdb.DuckDBPyConnection:
        connection = self._connections.get(path)
        if connection is None:
            with self._lock:
                connection = self._connections.get(path)
                if connection is None:
                    handle = os.open(path, os.O_RDONLY)
                    try:
                        # One thread per connection: DuckDB's own pool cost a quarter of the
                        # throughput of small indexed queries served by several worker processes.
                        connection = duckdb.connect(path, read_only=True, config={"threads": 1})
                    except BaseException:
                        os.close(handle)
                        raise
                    # A new version of a dataset retires the connection to the one it replaces.
                    for other in [
                        p for p in self._connections if _dataset_of(p) == _dataset_of(path)
                    ]:
                        self._forget(other)
                    self._connections[path] = connection
                    self._handles[path] = handle
        return connection

    def _forget(self, path: str) -> None:
        """Close a file's connection and descriptor (holding the lock)."""
        connection = self._connections.pop(path, None)
        handle = self._handles.pop(path, None)
        if connection is not None:
            connection.close()
        if handle is not None:
            os.close(handle)

    def close(self, path: str) -> None:
        """Forget a file (a replaced version, a deleted dataset's) in this process: closing the
        connection closes every thread's cursor on it and releases the file."""
        with self._lock:
            self._forget(path)

    def paths(self) -> list[str]:
        """The files open in this process."""
        with self._lock:
            return list(self._connections)

    def close_all(self) -> None:
        """Close every file (tests)."""
        with self._lock:
            for path in list(self._connections):
                self._forget(path)
        self._local = threading.local()


duckdb_files = DuckDBFiles()
