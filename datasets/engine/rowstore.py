"""Row stores: a row of an uploaded dataset by its primary key, without DuckDB's per-query cost.

DuckDB answers a point lookup in 0.7-0.9 ms, most of it the cost of running any query at all; a
SQLite B-tree answers it in microseconds. So beside each immutable version file
`<slug>/vN-<stamp>.duckdb`, Gateway writes `<slug>/rows/vN-<stamp>.sqlite3`: one WITHOUT ROWID
table keyed by the primary key, holding every row once more. Each value is stored so that it reads
back as the very Python value DuckDB returns for it; the engine then converts, masks and hides it
exactly as it does DuckDB's values, so the answer is the same, and a column edited in the admin
(hidden, masked, a new description) applies at once, without rebuilding.

A store is built after its version goes live (until it exists, lookups use DuckDB), written under a
temporary name and renamed into place: a half-written store is never read. Whatever the store
cannot answer exactly as DuckDB would (a column of a type it does not keep, a key or row filter on
a column whose type was changed in the admin) is answered by DuckDB.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import duckdb
from django.conf import settings

from datasets.engine.connections import row_store_files
from datasets.engine.query import Filter
from datasets.engine.spec import DatasetSpec

logger = logging.getLogger("gateway")

FORMAT = "1"
FOLDER = "rows"
SUFFIX = ".sqlite3"
BUILDING = "-building" + SUFFIX
BATCH_ROWS = 10_000
# SQLite's default limit is 2000 columns per table; the key takes one.
MAX_COLUMNS = 1990


# Codecs: how a DuckDB value is written to SQLite, and read back as the same Python value.


def _encode_float(value: float):
    return "nan" if value != value else value  # SQLite stores NaN as NULL


def _decode_float(value) -> float:
    return value if type(value) is float else float(value)


@dataclass(frozen=True)
class Codec:
    """`encode` a DuckDB value for SQLite, `decode` it back (None: stored as it is)."""

    encode: Callable | None = None
    decode: Callable | None = None


CODECS: dict[str, Codec] = {
    "int": Codec(),
    "bigint": Codec(str, int),  # beyond SQLite's 64-bit integers
    "float": Codec(_encode_float, _decode_float),
    "bool": Codec(None, bool),
    "str": Codec(),
    "bytes": Codec(),
    "decimal": Codec(str, Decimal),
    "date": Codec(dt.date.isoformat, dt.date.fromisoformat),
    "datetime": Codec(dt.datetime.isoformat, dt.datetime.fromisoformat),
    "time": Codec(dt.time.isoformat, dt.time.fromisoformat),
    "uuid": Codec(str, uuid.UUID),
}
_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_DATETIMES = {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"}
_SIMPLE = {
    "BOOLEAN": "bool",
    "UBIGINT": "bigint",
    "HUGEINT": "bigint",
    "UHUGEINT": "bigint",
    "FLOAT": "float",
    "DOUBLE": "float",
    "DATE": "date",
    "VARCHAR": "str",
    "BLOB": "bytes",
    "TIME": "time",
    "UUID": "uuid",
}


def codec_name(duckdb_type: str) -> str | None:
    """The codec of a DuckDB column type; None for a type the store does not keep."""
    t = duckdb_type.upper()
    if t in _INTEGERS:
        return "int"
    if t in _DATETIMES:
        return "datetime"
    if t.startswith("DECIMAL"):
        return "decimal"
    return _SIMPLE.get(t)


# Where DuckDB's `column = value` and Python's `==` agree (Gateway type, DuckDB types): keys and
# row filters on these are answered by the store. A FLOAT column compares as a double in both; a
# DECIMAL one is cast to a double by DuckDB, a TIMESTAMP_NS one keeps its nanoseconds: DuckDB.
_EQUAL = {
    "string": {"VARCHAR"},
    "integer": _INTEGERS,
    "number": {"DOUBLE", "FLOAT"},
    "boolean": {"BOOLEAN"},
    "date": {"DATE"},
    "datetime": {"TIMESTAMP"},
}
_KEY_TYPES = ("string", "integer", "date", "datetime")


def _comparable(type_: str, duckdb_type: str) -> bool:
    return duckdb_type.upper() in _EQUAL.get(type_, ())


# Files


def store_path(file_path: str) -> str:
    """The row store of a version file: <slug>/vN-<stamp>.duckdb -> <slug>/rows/vN-<stamp>.sqlite3."""
    folder, name = os.path.split(file_path)
    return os.path.join(folder, FOLDER, os.path.splitext(name)[0] + SUFFIX)


def version_files(store: str) -> tuple[str, str]:
    """The store and its temporary name while it is built (both removed with their version)."""
    return store, store[: -len(SUFFIX)] + BUILDING


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# Building


_built_hooks: list[Callable[[str], None]] = []


def when_built(hook: Callable[[str], None]) -> None:
    """Call `hook(file_path)` whenever this process has written the row store of a version."""
    _built_hooks.append(hook)


def _built(file_path: str) -> None:
    for hook in _built_hooks:
        try:
            hook(file_path)
        except Exception:
            logger.warning("After the row store of %s was built", file_path, exc_info=True)


def build(file_path: str, table: str, key: str) -> bool:
    """Write the row store of the DuckDB file `file_path` (`table` keyed by `key`), unless another
    thread or process is writing it; True when the store exists afterwards.

    Never raises: a store that cannot be built leaves lookups on DuckDB, with a warning logged.
    """
    target = store_path(file_path)
    folder = os.path.dirname(target)
    if not os.path.exists(file_path):
        return False  # the version was deleted (its dataset too, perhaps): nothing to copy
    try:
        os.makedirs(folder, exist_ok=True)
        lock = os.open(folder, os.O_RDONLY)
    except OSError as error:
        logger.warning("Row store %s not built: %s", target, error)
        return False
    try:
        try:
            # One builder at a time per dataset, across processes; the lock goes with its holder.
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if os.path.exists(target):
            return True
        _, temporary = version_files(target)
        try:
            _write(file_path, table, key, temporary)
            os.replace(temporary, target)
            _sync(folder)
            if not os.path.exists(file_path):
                # Its dataset was deleted while the store was written (the deletion removes the
                # version file first, then the folder): the copy of its rows goes too.
                os.unlink(target)
                return False
            _built(file_path)
        except Exception as error:
            logger.warning("Row store %s not built: %s", target, error)
            if os.path.exists(temporary):
                os.unlink(temporary)
            return False
        return True
    finally:
        os.close(lock)  # releases the lock


def _sync(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write(file_path: str, table: str, key: str, temporary: str) -> None:
    if os.path.exists(temporary):
        os.unlink(temporary)  # left by a builder that stopped: we hold the lock now
    # The same configuration as the engine's connection, so both share one DuckDB instance.
    source = duckdb.connect(file_path, read_only=True, config={"threads": 1})
    target = sqlite3.connect(temporary)
    try:
        described = source.execute(f"DESCRIBE {_quote(table)}").fetchall()
        names = [row[0] for row in described]
        if key not in names:
            raise ValueError(f"no column {key!r}")
        columns = []  # [physical name, DuckDB type, codec or None]
        for name, type_, *_ in described:
            codec = codec_name(type_)
            columns.append([name, type_, codec])
        kept = [column for column in columns if column[2] is not None][:MAX_COLUMNS]
        key_codec = codec_name(dict((row[0], row[1]) for row in described)[key])
        if key_codec not in ("int", "str", "date", "datetime"):
            raise ValueError(f"key {key!r} is of type {key_codec}")
        positions = {column[0]: index for index, column in enumerate(kept)}
        for column in columns:
            column.append(positions.get(column[0]))

        target.execute("PRAGMA journal_mode = OFF")
        target.execute("PRAGMA synchronous = OFF")
        stored = ", ".join(f"c{index}" for index in range(len(kept)))
        target.execute(f"CREATE TABLE rows (k PRIMARY KEY, {stored}) WITHOUT ROWID")
        target.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")

        encoders = [CODECS[key_codec].encode] + [CODECS[column[2]].encode for column in kept]
        selected = ", ".join(_quote(name) for name in [key] + [column[0] for column in kept])
        insert = f"INSERT INTO rows VALUES ({', '.join('?' * (len(kept) + 1))})"
        cursor = source.execute(f"SELECT {selected} FROM {_quote(table)} ORDER BY {_quote(key)}")
        encoded = [(index, encode) for index, encode in enumerate(encoders) if encode is not None]
        while batch := cursor.fetchmany(BATCH_ROWS):
            if encoded:
                batch = [_encode(row, encoded) for row in batch]
            target.executemany(insert, batch)
        target.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("format", FORMAT), ("key", key), ("columns", json.dumps(columns))],
        )
        target.commit()
    finally:
        target.close()
        source.close()
    _sync(temporary)


def _encode(row: tuple, encoded: list[tuple[int, Callable]]) -> tuple:
    values = list(row)
    for index, encode in encoded:
        value = values[index]
        if value is not None:
            values[index] = encode(value)
    return tuple(values)


_started: set[str] = set()
_started_lock = threading.Lock()


def build_in_background(file_path: str, table: str, key: str) -> threading.Thread | None:
    """Build the row store in a thread of this process (once per file); the thread, or None."""
    with _started_lock:
        if file_path in _started:
            return None
        _started.add(file_path)
    # Not a daemon: a command that imported a file finishes its store before it exits.
    thread = threading.Thread(
        target=build, args=(file_path, table, key), name="gateway-row-store", daemon=False
    )
    thread.start()
    return thread


def _build_on_demand(spec: DatasetSpec) -> None:
    """A version without its store (imported before stores existed, or its builder stopped)."""
    data = os.path.join(str(settings.GATEWAY_DATA_DIR), "datasets", "")
    if spec.file_path in _started or not spec.file_path.startswith(data):
        return
    key = spec.any_column(spec.primary_key or "")
    if key is not None:
        build_in_background(spec.file_path, spec.table, key.physical)


# Reading


@dataclass(frozen=True)
class _Layout:
    """What a store holds: its key and, per physical column, (DuckDB type, codec, position)."""

    key: str
    columns: dict[str, tuple[str, str | None, int | None]]


_layouts: dict[str, _Layout] = {}


def _layout(path: str, connection: sqlite3.Connection) -> _Layout | None:
    layout = _layouts.get(path)
    if layout is None:
        meta = dict(connection.execute("SELECT name, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            return None
        columns = {
            name: (type_, codec, position)
            for name, type_, codec, position in json.loads(meta["columns"])
        }
        layout = _layouts[path] = _Layout(key=meta["key"], columns=columns)
    return layout


@dataclass(frozen=True)
class _Plan:
    """How to answer a spec's lookups from a store: SQL, decoders, and how to bind the key."""

    sql: str
    decoders: tuple[Callable | None, ...]
    width: int  # the visible columns; the values after them are the row filters' columns
    encode_key: Callable | None


_plans: dict[tuple, tuple[DatasetSpec, _Plan | None]] = {}
_PLANS_MAX = 256


def _codec(name: str | None) -> Codec:
    if name is None:  # a column the store does not keep: plans leave those to DuckDB
        raise ValueError("column not kept in the row store")
    return CODECS[name]


def _make_plan(spec: DatasetSpec, layout: _Layout, filters: tuple[Filter, ...]) -> _Plan | None:
    key = spec.any_column(spec.primary_key or "")
    if key is None or key.physical != layout.key or key.type not in _KEY_TYPES:
        return None
    key_type, key_codec, _ = layout.columns[layout.key]
    if not _comparable(key.type, key_type):
        return None
    selected = []
    for column in spec.columns:
        entry = layout.columns.get(column.physical)
        if entry is None or entry[2] is None:
            return None
        selected.append(entry)
    for item in filters:
        entry = layout.columns.get(item.column.physical)
        if entry is None or entry[2] is None or item.op != "eq":
            return None
        if not _comparable(item.column.type, entry[0]):
            return None
        selected.append(entry)
    if not selected:
        return None
    stored = ", ".join(f"c{position}" for _, _, position in selected)
    return _Plan(
        sql=f"SELECT {stored} FROM rows WHERE k = ?",
        decoders=tuple(_codec(codec).decode for _, codec, _ in selected),
        width=len(spec.columns),
        encode_key=_codec(key_codec).encode,
    )


def _plan(spec: DatasetSpec, path: str, layout: _Layout, filters) -> _Plan | None:
    cache_key = (id(spec), path, tuple(item.column.physical for item in filters))
    entry = _plans.get(cache_key)
    if entry is None or entry[0] is not spec:
        if len(_plans) >= _PLANS_MAX:
            _plans.clear()
        entry = _plans[cache_key] = (spec, _make_plan(spec, layout, filters))
    return entry[1]


_paths: dict[str, str] = {}


def fetch_row(spec: DatasetSpec, key, filters: tuple[Filter, ...] = ()) -> list[tuple] | None:
    """The row of an uploaded dataset whose primary key is `key` (already parsed), within the
    key's row filters, as DuckDB returns it: [values of spec.columns], [] when there is none, or
    None when the store cannot answer (absent, being built, or not exactly as DuckDB would)."""
    path = _paths.get(spec.file_path)
    if path is None:
        path = _paths[spec.file_path] = store_path(spec.file_path)
    connection = row_store_files.connection(path)
    if connection is None:
        _build_on_demand(spec)
        return None
    layout = _layout(path, connection)
    plan = _plan(spec, path, layout, filters) if layout is not None else None
    if plan is None:
        return None
    bound = key if plan.encode_key is None else plan.encode_key(key)
    row = connection.execute(plan.sql, (bound,)).fetchone()
    if row is None:
        return []
    values = [
        value if decode is None or value is None else decode(value)
        for value, decode in zip(row, plan.decoders, strict=True)
    ]
    for item, value in zip(filters, values[plan.width :], strict=True):
        if value is None or value != item.value:
            return []
    return [tuple(values[: plan.width])]


def known_files() -> set[str]:
    """The version files whose stores this process has looked up or built."""
    with _started_lock:
        return set(_paths) | _started


def forget_files(file_paths: list[str]) -> None:
    """Close and forget the stores of these version files (a deleted dataset's) in this process."""
    stores = {_paths.pop(path, "") or store_path(path) for path in file_paths}
    for store in stores:
        _layouts.pop(store, None)
    for key in [key for key in list(_plans) if key[1] in stores]:
        _plans.pop(key, None)
    with _started_lock:
        _started.difference_update(file_paths)
    row_store_files.retire(sorted(stores))


def forget() -> None:
    """Forget every open store, layout and plan of this process (tests)."""
    row_store_files.close_all()
    _layouts.clear()
    _plans.clear()
    with _started_lock:
        _started.clear()
