"""Ingestion: an uploaded file (CSV/TSV, XLSX, JSON, NDJSON, Parquet) -> a new DuckDB database file.

The file is read once by DuckDB itself (dialect and types sniffed by DuckDB, not by hand) into a
table named `data`, its primary key indexed, and every column profiled (type, enum, min, max,
distinct and null counts).
XLSX is the exception: DuckDB's excel extension cannot be loaded here, so openpyxl streams the
sheet row by row into a typed temporary CSV that DuckDB then reads. Nothing holds the whole file
in Python.

Every import runs within a budget (`Budget`: a time limit and DuckDB's memory limit), whatever the
file declares: an XLSX archive is checked before it is parsed (the unpacked size and compression
ratio of each part, the sheet's declared and actual size), a statement that runs past the deadline
is interrupted, and a refused file gets one short message that quotes at most one line of it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import decimal
import re
import struct
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree
from xml.parsers import expat

import duckdb

from datasets.engine.statistics import RANGED_TYPES
from datasets.naming import snake_case

TABLE = "data"
ENUM_MAX = 50
ROW_ID = "row_id"
# Bounded working memory for an import running inside a web worker; DuckDB spills beyond it.
MEMORY_LIMIT = "1GB"
# The time one import may take, reading, indexing and profiling included.
IMPORT_SECONDS = 900.0

# XLSX limits, checked on the archive's directory and the sheet's XML before openpyxl parses them.
# Excel's own sheet limits: a sheet beyond them was not made by a spreadsheet.
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_COLUMNS = 16_384
XLSX_MAX_PARTS = 10_000
# openpyxl keeps every shared string in memory, at about seven times its size in the XML.
XLSX_SHARED_STRINGS_MAX_BYTES = 64 * 1024 * 1024
# Other XML parts (workbook, styles, relationships...) are parsed whole too.
XLSX_PART_MAX_BYTES = 16 * 1024 * 1024
# Worksheets are streamed: their size costs time (bounded by the deadline), not memory.
XLSX_SHEET_MAX_BYTES = 4 * 1024 * 1024 * 1024
# Spreadsheet XML packs about 10:1; an archive bomb packs about 1000:1.
XLSX_MAX_RATIO = 100
_XLSX_RATIO_MIN_BYTES = 1024 * 1024

# A refusal quotes at most this much of one line or value of the file, and is at most this long.
QUOTE_MAX_CHARS = 200
MESSAGE_MAX_CHARS = 1000

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".json": "json",
    ".ndjson": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}

Progress = Callable[[float], None]


class IngestError(Exception):
    """A file that cannot become a dataset; the message says why, for the person who uploaded it."""


@dataclass(frozen=True)
class Budget:
    """What one import may spend: seconds of wall time and DuckDB working memory."""

    seconds: float = IMPORT_SECONDS
    memory: str = MEMORY_LIMIT
    started: float = field(default_factory=time.monotonic, compare=False)

    @property
    def deadline(self) -> float:
        return self.started + self.seconds

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def check(self) -> None:
        """IngestError once the time is spent."""
        if self.expired():
            raise IngestError(self.time_message())

    def time_message(self) -> str:
        return (
            f"The import took longer than {self.seconds:g} seconds, the time limit of one "
            "import: split the file, or import it with manage.py import_dataset --time-limit."
        )

    def memory_message(self) -> str:
        return (
            f"The import needed more than {self.memory} of working memory, the memory limit of "
            "one import: split the file into smaller ones."
        )


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_LONG = QUOTE_MAX_CHARS + 1
_QUOTED = re.compile(rf"""(")([^"]{{{_LONG},}})"|(')([^']{{{_LONG},}})'""")


def _shorten_quote(match: re.Match) -> str:
    quote_mark, quoted = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
    return quote_mark + shorten(quoted, QUOTE_MAX_CHARS) + quote_mark


def refusal(text: str) -> str:
    """A message on one line, at most MESSAGE_MAX_CHARS long, quoting at most QUOTE_MAX_CHARS of any
    line or value of the file."""
    lines = []
    for line in str(text).splitlines():
        line = line.strip()
        if line.startswith("Original Line:"):  # DuckDB quoting the file's line
            line = "Original Line: " + shorten(line[14:].strip(), QUOTE_MAX_CHARS)
        if line:
            lines.append(line)
    one_line = " ".join(lines)
    one_line = _QUOTED.sub(_shorten_quote, one_line)
    return shorten(one_line, MESSAGE_MAX_CHARS)


@dataclass(frozen=True)
class ColumnProfile:
    """A column of the ingested table: physical name, Gateway type and statistics."""

    physical_name: str
    type: str
    enum: list | None
    min_value: object
    max_value: object
    distinct_count: int | None = None
    null_count: int | None = None
    unique: bool | None = None
    instant: bool = False  # a datetime of moments: DuckDB's TIMESTAMP WITH TIME ZONE


@dataclass(frozen=True)
class Ingested:
    """What an ingestion produced: the columns in table order, the row count and the key column."""

    columns: tuple[ColumnProfile, ...]
    row_count: int
    primary_key: str


def file_format(filename: str) -> str:
    """csv, xlsx, json or parquet, from the file name's extension."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        supported = ", ".join(sorted(FORMATS))
        raise IngestError(
            f"Unsupported file type {suffix or '(no extension)'!r} for {Path(filename).name!r}: "
            f"use one of {supported}."
        )
    return FORMATS[suffix]


def quote(identifier: str) -> str:
    """A DuckDB identifier, double-quoted (column names come from the file, never from a client)."""
    return '"' + identifier.replace('"', '""') + '"'


def gateway_type(duckdb_type: str) -> str | None:
    """The Gateway column type of a DuckDB type; None for a type stored as text (TIME, UUID...)."""
    t = duckdb_type.upper()
    if t == "BOOLEAN":
        return "boolean"
    if t in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    }:
        return "integer"
    if t in {"FLOAT", "DOUBLE", "REAL"} or t.startswith("DECIMAL"):
        return "number"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "datetime"
    if t == "VARCHAR":
        return "string"
    return None


def is_instant(duckdb_type: str) -> bool:
    """TIMESTAMPTZ: moments, shown with their offset in the dataset's time zone."""
    return duckdb_type.upper() in {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"}


def is_nested(duckdb_type: str) -> bool:
    """STRUCT, LIST, ARRAY, MAP and UNION values cannot be served as flat columns."""
    t = duckdb_type.upper()
    return t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION"))


def ingest_file(
    *,
    path: Path,
    target: Path,
    filename: str | None = None,
    primary_key: str | None = None,
    preferred_keys: Sequence[str] = (),
    progress: Progress | None = None,
    budget: Budget | None = None,
    work_dir: Path | None = None,
) -> Ingested:
    """Write `path` into the new DuckDB file `target` (table `data`, key indexed) and profile it.

    Temporary files (XLSX rows as CSV, DuckDB's spill files) go to `work_dir` (default: beside
    `target`). On any failure `target` is removed and IngestError raised, with a one-line message:
    the caller's previous file is untouched because ingestion only ever writes a new file.
    """
    fmt = file_format(filename or path.name)
    if target.exists():
        raise IngestError(f"{target.name} already exists.")
    budget = budget or Budget()
    work_dir = work_dir or target.parent
    report = progress or (lambda percent: None)
    connection = duckdb.connect(str(target))
    watch = _Watch(connection, report, budget)
    try:
        connection.execute("SET memory_limit = ?", [budget.memory])
        connection.execute("SET temp_directory = ?", [str(work_dir / ".spill")])
        # query_progress() reports nothing unless the progress bar is on; never print it.
        connection.execute("SET enable_progress_bar = true")
        connection.execute("SET enable_progress_bar_print = false")
        report(0.0)
        with watch:
            if fmt == "xlsx":
                _load_xlsx(connection, path, work_dir, report, budget, watch)
            else:
                with watch.reporting(0.0, 85.0):
                    _load(connection, path, fmt, budget)
            budget.check()
            report(85.0)
            ingested = _profile(connection, primary_key, preferred_keys)
            budget.check()
            report(95.0)
            connection.execute("CHECKPOINT")
    except IngestError as error:
        connection.close()
        _remove(target)
        raise IngestError(refusal(str(error))) from None
    except duckdb.Error as error:
        connection.close()
        _remove(target)
        raise IngestError(refusal(_budget_message(error, budget, watch))) from None
    except BaseException:
        connection.close()
        _remove(target)
        raise
    connection.close()
    report(100.0)
    return ingested


def _budget_message(error: duckdb.Error, budget: Budget, watch: _Watch) -> str:
    """Why DuckDB stopped: the time or memory budget when it was that, else DuckDB's reason."""
    if isinstance(error, duckdb.InterruptException) or watch.interrupted or budget.expired():
        return budget.time_message()
    if isinstance(error, duckdb.OutOfMemoryException):
        return budget.memory_message()
    return duckdb_message(error)


def _remove(target: Path) -> None:
    for leftover in (target, target.with_name(target.name + ".wal")):
        leftover.unlink(missing_ok=True)


class _Watch:
    """A second thread beside the import: reports DuckDB's progress of the running statement, and
    interrupts any statement that runs past the deadline (DuckDB then raises InterruptException)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, report: Progress, budget: Budget):
        self._connection = connection
        self._report = report
        self._budget = budget
        self._range: tuple[float, float] | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-ingest-watch", daemon=True)
        self.interrupted = False

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()

    @contextlib.contextmanager
    def reporting(self, start: float, end: float):
        """Report the progress of the statements run inside, scaled to start..end percent."""
        self._range = (start, end)
        try:
            yield
        finally:
            self._range = None

    def _run(self) -> None:
        while not self._done.wait(0.2):
            with contextlib.suppress(duckdb.Error):
                if self._budget.expired():
                    # Repeated: a statement started after the first interrupt is stopped too.
                    self.interrupted = True
                    self._connection.interrupt()
                    continue
                scale = self._range
                if scale is None:
                    continue
                percent = self._connection.query_progress()
                if percent >= 0:
                    start, end = scale
                    self._report(start + (end - start) * min(percent, 100.0) / 100.0)


def duckdb_message(error: Exception) -> str:
    """DuckDB's own message (it names the line and column) without its tuning hints and option dump."""
    text = str(error)
    text = re.sub(r"^[A-Za-z ]+ Error: ", "", text)
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("Possible Solution", "Possible solutions", "* ", "LINE ", "^")) or (
            "=" in stripped and stripped.split("=")[0].strip().replace("_", "").isalpha()
        ):
            continue
        if stripped.startswith("This type was auto-detected"):
            continue
        if stripped.startswith("Original Line:"):  # the file's own line: quote only its start
            stripped = refusal(stripped)
        if stripped:
            kept.append(stripped)
    message = " ".join(kept).split(" The search space used was")[0]
    return message or text


_READERS = {"csv": "read_csv", "json": "read_json", "parquet": "read_parquet"}


def _reader(fmt: str, *, full_sample: bool = False) -> str:
    # The path is always a bound parameter; only fixed options are written into the SQL.
    function = _READERS[fmt]
    options = ""
    if fmt == "csv":
        # Never let the sniffer skip leading lines: it would silently drop rows before a ragged
        # one. With skip = 0 a ragged file reads as one column, which _check_csv_columns reports.
        options += ", skip = 0"
    if full_sample and fmt in {"csv", "json"}:
        options += ", sample_size = -1"
    return f"{function}(?{options})"


def _load(connection: duckdb.DuckDBPyConnection, path: Path, fmt: str, budget: Budget) -> None:
    """CREATE TABLE data AS SELECT ... FROM the DuckDB reader of the file, in one pass."""
    source = str(path)
    try:
        columns = _described(connection, source, fmt)
    except duckdb.Error as error:
        raise _read_failure(fmt, error) from None
    if fmt == "csv":
        _check_csv_columns(source, columns, budget)
    _reject_nested(columns)
    typed: dict[str, _Typed] = {}
    try:
        typed = _typed_once_missing(connection, source, fmt, columns)
        _create(connection, source, fmt, columns, typed)
    except (duckdb.ConversionException, duckdb.InvalidInputException) as error:
        # The sniffer looks at the first rows only; a later value that does not fit the guessed
        # type (an "unknown" in a number column, or in a column of dates written day first,
        # which strptime refuses) makes DuckDB scan everything to choose the type.
        if isinstance(error, duckdb.InvalidInputException) and not _parsed(typed):
            raise _read_failure(fmt, error) from None
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        try:
            columns = _described(connection, source, fmt, full_sample=True)
            _reject_nested(columns)
            typed = _typed_once_missing(connection, source, fmt, columns, full_sample=True)
            _create(connection, source, fmt, columns, typed, full_sample=True)
        except duckdb.Error as error:
            raise _read_failure(fmt, error) from None
    except duckdb.Error as error:
        raise _read_failure(fmt, error) from None
    _reject_nested_json(connection, columns)


def _described(
    connection: duckdb.DuckDBPyConnection, source: str, fmt: str, *, full_sample: bool = False
) -> list[tuple[str, str]]:
    reader = _reader(fmt, full_sample=full_sample)
    described = connection.execute(f"DESCRIBE SELECT * FROM {reader}", [source]).fetchall()
    return [(row[0], row[1]) for row in described]


def _create(
    connection: duckdb.DuckDBPyConnection,
    source: str,
    fmt: str,
    columns: list[tuple[str, str]],
    typed: dict[str, _Typed],
    *,
    full_sample: bool = False,
) -> None:
    select = _select_list(columns, typed)
    reader = _reader(fmt, full_sample=full_sample)
    connection.execute(f"CREATE TABLE {TABLE} AS SELECT {select} FROM {reader}", [source])


# What spreadsheets and R, pandas or SQL exports write for "no value". In a column whose other
# values are all numbers, dates or booleans they are read as NULL, so that the column keeps its
# type; in a text column they stay text ("NA" is also Namibia).
MISSING_VALUES = ("NA", "N/A", "n/a", "#N/A", "NULL", "null", "None", "NaN", "nan", "<NA>")


@dataclass(frozen=True)
class _Typed:
    """The type a text column has once its missing-value markers are NULL, and the format its
    dates or timestamps were written in (None: ISO 8601)."""

    type: str
    format: str | None = None


def _typed_once_missing(
    connection: duckdb.DuckDBPyConnection,
    source: str,
    fmt: str,
    columns: list[tuple[str, str]],
    *,
    full_sample: bool = False,
) -> dict[str, _Typed]:
    """The CSV's text columns that DuckDB's sniffer types as numbers, dates or booleans when
    MISSING_VALUES are NULL."""
    if fmt != "csv" or not any(kind == "VARCHAR" for _, kind in columns):
        return {}
    nullstr = ", ".join(_literal(value) for value in ("", *MISSING_VALUES))
    sample = ", sample_size = -1" if full_sample else ""
    row = connection.execute(
        "SELECT Columns, DateFormat, TimestampFormat "
        f"FROM sniff_csv(?, skip = 0, nullstr = [{nullstr}]{sample})",
        [source],
    ).fetchone()
    sniffed, date_format, timestamp_format = row if row else ([], None, None)
    types = {column["name"]: column["type"] for column in sniffed}
    typed = {}
    for name, kind in columns:
        other = types.get(name, "VARCHAR")
        if kind == "VARCHAR" and other != "VARCHAR" and gateway_type(other) is not None:
            written = {"DATE": date_format}.get(other, timestamp_format)
            typed[name] = _Typed(other, written if other in _DATED else None)
    return typed


_DATED = {"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"}


def _parsed(typed: dict[str, _Typed]) -> bool:
    """Whether some column is read with strptime (whose refusal is an InvalidInputException)."""
    return any(column.format for column in typed.values())


def _missing_as_null(column: str, typed: _Typed) -> str:
    """The SQL reading a text column as its type, its missing-value markers as NULL."""
    markers = ", ".join(_literal(value) for value in MISSING_VALUES)
    value = f"CASE WHEN {column} IN ({markers}) THEN NULL ELSE {column} END"
    if typed.format:
        value = f"strptime({value}, {_literal(typed.format)})"
    return f"CAST({value} AS {typed.type})"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_BUDGET_ERRORS = (duckdb.InterruptException, duckdb.OutOfMemoryException)


def _read_failure(fmt: str, error: duckdb.Error) -> Exception:
    """The IngestError for a file DuckDB could not read; a budget error stays itself."""
    if isinstance(error, _BUDGET_ERRORS):
        return error
    kind = {"csv": "CSV", "json": "JSON", "parquet": "Parquet"}[fmt]
    message = f"Could not read the {kind} file: {duckdb_message(error)}"
    if "not utf-8 encoded" in message.lower():
        message += " Save it as UTF-8 (in Excel: 'CSV UTF-8') and upload it again."
    return IngestError(message)


def _check_csv_columns(source: str, columns: list[tuple[str, str]], budget: Budget) -> None:
    """A file DuckDB reads as one column whose name holds a delimiter has a ragged row somewhere.

    DuckDB's sniffer then falls back to a single column; reading again with the delimiter named
    explicitly makes DuckDB report the line that does not fit.
    """
    if len(columns) != 1:
        return
    name = columns[0][0]
    for delimiter in (",", ";", "\t", "|"):
        if delimiter in name and (ragged := _ragged_line(source, delimiter, budget)):
            raise IngestError(f"Could not read the CSV file: {ragged}")


def _ragged_line(source: str, delimiter: str, budget: Budget) -> str | None:
    """The first line whose number of fields differs from the header's (streamed, not loaded)."""
    shown = "tab" if delimiter == "\t" else repr(delimiter)
    with open(source, encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader, [])
            for number, record in enumerate(reader):
                if record and len(record) != len(header):
                    return (
                        f"line {reader.line_num} has {len(record)} {shown}-separated fields where "
                        f"the header has {len(header)}. Check the delimiter and quoting of that line."
                    )
                if number % 10_000 == 0:
                    budget.check()
        except csv.Error as error:  # a field over csv's size limit: the line is not delimited
            return f"line {reader.line_num} cannot be split into fields ({error})."
    return None


def _reject_nested(columns: list[tuple[str, str]]) -> None:
    for name, duckdb_type in columns:
        if is_nested(duckdb_type):
            raise IngestError(
                f"Column {name!r} holds nested objects or lists ({duckdb_type}); flatten it into "
                "plain columns (one value per cell) and upload the file again."
            )


def _reject_nested_json(
    connection: duckdb.DuckDBPyConnection, columns: list[tuple[str, str]]
) -> None:
    """A JSON column of mixed values was stored as text; objects or arrays inside it are nested."""
    for name, duckdb_type in columns:
        if duckdb_type.upper() != "JSON":
            continue
        nested = connection.execute(
            f"SELECT count(*) FROM {TABLE} WHERE json_type(CAST({quote(name)} AS JSON)) "
            "IN ('OBJECT', 'ARRAY')"
        ).fetchall()[0][0]
        if nested:
            raise IngestError(
                f"Column {name!r} holds nested objects or lists in {nested} rows; flatten it "
                "into plain columns (one value per cell) and upload the file again."
            )


def _select_list(columns: list[tuple[str, str]], typed: dict[str, _Typed] | None = None) -> str:
    """Every column as read, except types Gateway does not serve (TIME, UUID, JSON...) as text,
    and text columns typed once their missing-value markers are NULL."""
    parts = []
    for name, duckdb_type in columns:
        column = quote(name)
        if typed and name in typed:
            parts.append(f"{_missing_as_null(column, typed[name])} AS {column}")
        elif gateway_type(duckdb_type) is None:
            parts.append(f"CAST({column} AS VARCHAR) AS {column}")
        else:
            parts.append(column)
    return ", ".join(parts) if parts else "*"


# XLSX -------------------------------------------------------------------------------------------

_XLSX_BATCH_ROWS = 10_000
_CONTENT_TYPES = "[Content_Types].xml"
_SHARED_STRINGS_TYPE = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
)
_WORKSHEET_TYPES = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml",
    "application/vnd.ms-excel.worksheet",
}
_MEDIA_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".emf", ".wmf", ".bin"}
_CELL_REFERENCE = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d{1,12})$")


def _xlsx_refused(reason: str) -> IngestError:
    return IngestError(f"Could not read the XLSX file: {reason}")


def _xlsx_mb(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:,.0f} KB"
    return f"{size / 1024 / 1024:,.0f} MB"


def check_xlsx_archive(path: Path) -> None:
    """Refuse an XLSX archive whose parts would unpack beyond the limits, before any is parsed.

    A part is never read past its declared size (zipfile stops there and fails the checksum), so
    checking the declared sizes bounds what openpyxl can unpack, whatever the parts contain.
    """
    entries = _zip_entry_count(path)
    if entries > XLSX_MAX_PARTS:
        raise _xlsx_refused(
            f"the archive has {entries:,} parts; a workbook has at most {XLSX_MAX_PARTS:,}."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            types = _content_types(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise _xlsx_refused(f"not a valid .xlsx workbook ({error}).") from None
    for info in infos:
        name = info.filename
        packed = max(info.compress_size, 1)
        if info.file_size > _XLSX_RATIO_MIN_BYTES and info.file_size / packed > XLSX_MAX_RATIO:
            raise _xlsx_refused(
                f"its part {name!r} unpacks from {_xlsx_mb(info.compress_size)} to "
                f"{_xlsx_mb(info.file_size)} ({info.file_size // packed:,} times its size; a "
                f"workbook packs at most about {XLSX_MAX_RATIO} times). The file looks like an "
                "archive bomb and was not read."
            )
        kind = types.get("/" + name.lstrip("/"), "")
        if kind == _SHARED_STRINGS_TYPE:
            limit, what = XLSX_SHARED_STRINGS_MAX_BYTES, "shared strings"
        elif kind in _WORKSHEET_TYPES:
            limit, what = XLSX_SHEET_MAX_BYTES, "sheet"
        elif Path(name).suffix.lower() in _MEDIA_SUFFIXES and not kind.endswith("xml"):
            continue  # images and embedded files: never parsed
        else:
            limit, what = XLSX_PART_MAX_BYTES, "part"
        if info.file_size > limit:
            raise _xlsx_refused(
                f"its {what} {name!r} unpacks to {_xlsx_mb(info.file_size)}, over the limit of "
                f"{_xlsx_mb(limit)} for one import. Save the sheet as CSV and upload that instead."
            )


def _zip_entry_count(path: Path) -> int:
    """The number of parts the archive's end record declares, read before zipfile lists them all."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - (65_535 + 22)))
        tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise _xlsx_refused("not a valid .xlsx workbook (it is not a zip archive).")
    entries = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    if entries == 0xFFFF:  # a ZIP64 archive: more parts than any workbook has
        return XLSX_MAX_PARTS + 1
    return entries


def _content_types(archive: zipfile.ZipFile) -> dict[str, str]:
    """Part name -> declared content type, from [Content_Types].xml (the types openpyxl goes by)."""
    try:
        info = archive.getinfo(_CONTENT_TYPES)
    except KeyError:
        raise _xlsx_refused(f"not a valid .xlsx workbook (no {_CONTENT_TYPES}).") from None
    if info.file_size > XLSX_PART_MAX_BYTES:
        raise _xlsx_refused(
            f"its part {_CONTENT_TYPES!r} unpacks to {_xlsx_mb(info.file_size)}, over the limit "
            f"of {_xlsx_mb(XLSX_PART_MAX_BYTES)}."
        )
    try:
        root = ElementTree.fromstring(archive.read(info))
    except (ElementTree.ParseError, zipfile.BadZipFile, ValueError) as error:
        raise _xlsx_refused(f"its part {_CONTENT_TYPES!r} is not valid XML ({error}).") from None
    return {
        element.get("PartName", ""): element.get("ContentType", "")
        for element in root
        if element.tag.rsplit("}", 1)[-1] == "Override"
    }


def _scan_sheet(archive: zipfile.ZipFile, part: str, budget: Budget, report: Progress) -> int:
    """Stream the sheet's XML once (constant memory) and return its number of rows.

    Refuses, before openpyxl reads a row, a sheet that declares or holds more rows or columns than
    Excel allows, numbers a row beyond them (openpyxl would fill the gap with empty rows), declares
    a DTD, or is not well-formed XML.
    """
    rows = 0
    cells = 0
    problem: list[str] = []

    def start(name: str, attributes: dict) -> None:
        nonlocal rows, cells
        tag = name.rsplit("}", 1)[-1]
        if tag == "c":
            cells += 1
            if cells > XLSX_MAX_COLUMNS:
                problem.append(
                    f"row {rows} of its first sheet has more than {XLSX_MAX_COLUMNS:,} cells, "
                    "the most a sheet can have."
                )
                raise _StopScan
        elif tag == "row":
            rows += 1
            cells = 0
            number = attributes.get("r")
            if number is not None:
                if not number.isdigit():
                    problem.append(f"row {rows} of its first sheet has no valid row number.")
                    raise _StopScan
                rows = max(rows, int(number))
            if rows > XLSX_MAX_ROWS:
                problem.append(
                    f"its first sheet has more than {XLSX_MAX_ROWS:,} rows, the most a sheet "
                    "can have. Save it as CSV and upload that instead."
                )
                raise _StopScan
        elif tag == "dimension":
            declared = _declared_size(attributes.get("ref", ""))
            if declared is not None and (
                declared[0] > XLSX_MAX_ROWS or declared[1] > XLSX_MAX_COLUMNS
            ):
                problem.append(
                    f"its first sheet declares {declared[0]:,} rows and {declared[1]:,} columns; "
                    f"a sheet has at most {XLSX_MAX_ROWS:,} rows and {XLSX_MAX_COLUMNS:,} columns."
                )
                raise _StopScan

    def doctype(*args) -> None:
        problem.append("its first sheet declares a DTD, which no spreadsheet writes.")
        raise _StopScan

    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = doctype
    size = max(archive.getinfo(part).file_size, 1)
    read = 0
    try:
        with archive.open(part) as source:
            while chunk := source.read(1024 * 1024):
                budget.check()
                read += len(chunk)
                parser.Parse(chunk, False)
                report(min(10.0, 10.0 * read / size))
            parser.Parse(b"", True)
    except _StopScan:
        raise _xlsx_refused(problem[0]) from None
    except expat.ExpatError as error:
        raise _xlsx_refused(
            f"its first sheet is not valid XML ({expat.ErrorString(error.code)} at line "
            f"{error.lineno}, column {error.offset})."
        ) from None
    except (zipfile.BadZipFile, EOFError, OSError) as error:  # a part longer than it declares
        raise _xlsx_refused(f"its first sheet is damaged ({error}).") from None
    return rows


class _StopScan(Exception):
    pass


def _declared_size(reference: str) -> tuple[int, int] | None:
    """(last row, last column) of a dimension such as A1:D20000000; None when it is not one."""
    from openpyxl.utils.cell import column_index_from_string

    last = reference.split(":")[-1]
    match = _CELL_REFERENCE.match(last)
    if not match:
        return None
    try:
        column = column_index_from_string(match.group(1).upper())
    except ValueError:
        return None
    return int(match.group(2)), column


def _load_xlsx(
    connection: duckdb.DuckDBPyConnection,
    path: Path,
    directory: Path,
    report: Progress,
    budget: Budget,
    watch: _Watch,
) -> None:
    """Stream the first sheet with openpyxl into a typed temporary CSV, then load it with DuckDB."""
    check_xlsx_archive(path)
    budget.check()
    with tempfile.NamedTemporaryFile(
        "w", suffix=".csv", dir=str(directory), delete=False, encoding="utf-8", newline=""
    ) as handle:
        staging = Path(handle.name)
    try:
        names, kinds = _read_xlsx(path, staging, report, budget)
        budget.check()
        types = [_xlsx_type(kind) for kind in kinds]
        # A typed column that also holds missing-value markers is staged as text, then typed.
        columns = list(zip(names, types, strict=True))
        typed = {
            name: _Typed(kind)
            for (name, kind), seen in zip(columns, kinds, strict=True)
            if kind != "VARCHAR" and "missing" in seen
        }
        with watch.reporting(80.0, 85.0):
            relation = connection.read_csv(
                str(staging),
                header=False,
                sep=",",
                quotechar='"',
                escapechar='"',
                names=names,
                dtype=["VARCHAR" if name in typed else kind for name, kind in columns],
            )
            if typed:
                relation = relation.project(_select_list(columns, typed))
            relation.create(TABLE)
    finally:
        staging.unlink(missing_ok=True)


def _read_xlsx(
    path: Path, staging: Path, report: Progress, budget: Budget
) -> tuple[list[str], list[set[str]]]:
    """The first sheet's rows written to `staging` as CSV; anything openpyxl raises is the file's."""
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except IngestError:
        raise
    except Exception as error:  # openpyxl raises anything from KeyError to TypeError on bad XML
        raise _xlsx_refused(f"not a valid .xlsx workbook ({_describe(error)}).") from None
    try:
        if not workbook.worksheets:
            raise _xlsx_refused("the workbook has no sheet.")
        sheet = workbook.worksheets[0]
        # openpyxl knows which part is the first sheet (from the workbook's relationships).
        total = _scan_sheet(workbook._archive, sheet._worksheet_path, budget, report)
        with open(staging, "w", encoding="utf-8", newline="") as handle:
            try:
                return _xlsx_to_csv(sheet, handle, total, report, budget)
            except IngestError:
                raise
            except Exception as error:
                raise _xlsx_refused(
                    f"its first sheet could not be read ({_describe(error)})."
                ) from None
    finally:
        workbook.close()


def _describe(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _xlsx_to_csv(
    sheet, handle, total: int, report: Progress, budget: Budget
) -> tuple[list[str], list[set[str]]]:
    writer = csv.writer(handle)
    rows = sheet.iter_rows(values_only=True)
    header: tuple | None = None
    line = 0
    for row in rows:
        line += 1
        if any(value is not None and str(value).strip() != "" for value in row):
            header = row
            break
    if header is None:
        raise IngestError(
            "The XLSX file's first sheet is empty: put column names in its first row."
        )
    width = len(header)
    while width and (header[width - 1] is None or str(header[width - 1]).strip() == ""):
        width -= 1
    names = _xlsx_names(header[:width])
    kinds: list[set[str]] = [set() for _ in names]
    batch: list[list] = []
    for row in rows:
        line += 1
        if len(row) > width and any(value not in (None, "") for value in row[width:]):
            raise IngestError(
                f"Row {line} of the XLSX file has a value beyond the last named column "
                f"({names[-1]!r}): give that column a name in the first row."
            )
        cells = list(row[:width]) + [None] * (width - len(row))
        if all(value is None for value in cells):
            continue
        batch.append([_xlsx_cell(value, kinds[index]) for index, value in enumerate(cells)])
        if len(batch) >= _XLSX_BATCH_ROWS:
            budget.check()
            writer.writerows(batch)
            batch.clear()
            if total:
                report(min(80.0, 10.0 + 70.0 * line / total))
    writer.writerows(batch)
    return names, kinds


def _xlsx_names(header: Sequence) -> list[str]:
    names: list[str] = []
    for index, value in enumerate(header):
        base = str(value).strip() if value is not None and str(value).strip() else f"column{index}"
        name, number = base, 1
        while name in names:
            name = f"{base}_{number}"
            number += 1
        names.append(name)
    return names


def _xlsx_cell(value, kinds: set[str]) -> str | None:
    """The CSV text of a cell, noting its kind so that the column's type can be chosen at the end."""
    if value is None:
        return None
    if isinstance(value, bool):
        kinds.add("boolean")
        return "true" if value else "false"
    if isinstance(value, int):
        kinds.add("integer")
        return str(value)
    if isinstance(value, float | decimal.Decimal):
        kinds.add("number")
        return repr(float(value))
    if isinstance(value, dt.datetime):
        # Excel stores dates as date-times; a column whose times are all midnight holds dates.
        if value.time() == dt.time(0) and value.tzinfo is None:
            kinds.add("date")
        else:
            kinds.add("datetime")
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        kinds.add("date")
        return value.isoformat()
    text = str(value)
    if text == "":
        return None
    kinds.add("missing" if text in MISSING_VALUES else "string")
    return text


def _xlsx_type(kinds: set[str]) -> str:
    kinds = kinds - {"missing"}
    if kinds == {"boolean"}:
        return "BOOLEAN"
    if kinds == {"integer"}:
        return "BIGINT"
    if kinds and kinds <= {"integer", "number"}:
        return "DOUBLE"
    if kinds == {"date"}:
        return "DATE"
    if kinds and kinds <= {"date", "datetime"}:
        return "TIMESTAMP"
    return "VARCHAR"


# Profile and key ---------------------------------------------------------------------------------


def _profile(
    connection: duckdb.DuckDBPyConnection, primary_key: str | None, preferred_keys: Sequence[str]
) -> Ingested:
    described = connection.execute(f"DESCRIBE {TABLE}").fetchall()
    if not described:
        raise IngestError("The file has no columns.")
    columns = [(row[0], row[1], gateway_type(row[1]) or "string") for row in described]
    aggregates = ["count(*)"]
    for name, _, kind in columns:
        column = quote(name)
        aggregates.append(f"count({column})")
        # Exact: describe publishes it, and a key candidate must be unique, not nearly.
        aggregates.append(f"count(DISTINCT {column})")
        if kind in RANGED_TYPES:
            aggregates += [f"min({column})", f"max({column})"]
    values = list(connection.execute(f"SELECT {', '.join(aggregates)} FROM {TABLE}").fetchall()[0])
    row_count = values.pop(0)
    if row_count == 0:
        raise IngestError("The file has a header but no rows.")
    stats: dict[str, dict] = {}
    for name, _, kind in columns:
        entry = {"non_null": values.pop(0), "distinct": values.pop(0), "min": None, "max": None}
        if kind in RANGED_TYPES:
            entry["min"], entry["max"] = _json_value(values.pop(0)), _json_value(values.pop(0))
        stats[name] = entry

    names = [name for name, _, _ in columns]
    key = _primary_key(connection, columns, stats, row_count, primary_key, preferred_keys)
    if key in stats and stats[key]["min"] is None:
        # A text key's first and last values: the schema's row-by-key example is a real key.
        column = quote(key)
        ((low, high),) = connection.execute(
            f"SELECT min({column}), max({column}) FROM {TABLE}"
        ).fetchall()
        stats[key]["min"], stats[key]["max"] = _json_value(low), _json_value(high)
    profiles = []
    for name, duckdb_type, kind in columns:
        enum = None
        # A key has one value per row: listing a few of them as an enum tells a reader nothing.
        if kind in {"string", "integer", "boolean"} and name != key:
            enum = _enum(connection, name)
        profiles.append(
            ColumnProfile(
                physical_name=name,
                type=kind,
                enum=enum,
                min_value=stats[name]["min"],
                max_value=stats[name]["max"],
                distinct_count=stats[name]["distinct"],
                null_count=row_count - stats[name]["non_null"],
                unique=0 < stats[name]["distinct"] == stats[name]["non_null"],
                instant=is_instant(duckdb_type),
            )
        )
    if key not in names:
        # The added row number goes first: it is what a reader looks a row up by.
        profiles.insert(
            0,
            ColumnProfile(
                physical_name=key,
                type="integer",
                enum=None,
                min_value=1,
                max_value=row_count,
                distinct_count=row_count,
                null_count=0,
                unique=True,
            ),
        )
    return Ingested(columns=tuple(profiles), row_count=row_count, primary_key=key)


def _enum(connection: duckdb.DuckDBPyConnection, name: str) -> list | None:
    column = quote(name)
    # LIMIT stops the scan early on a column with many values.
    found = connection.execute(
        f"SELECT DISTINCT {column} FROM {TABLE} WHERE {column} IS NOT NULL LIMIT {ENUM_MAX + 1}"
    ).fetchall()
    if not found or len(found) > ENUM_MAX:
        return None
    return sorted(_json_value(row[0]) for row in found)


def _json_value(value):
    """A statistic as JSON can hold it: ISO strings for dates, floats for decimals."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def _primary_key(
    connection: duckdb.DuckDBPyConnection,
    columns: list[tuple[str, str, str]],
    stats: dict[str, dict],
    row_count: int,
    declared: str | None,
    preferred: Sequence[str],
) -> str:
    """Index the declared key, else the previous key or an id-like column when unique and never
    null, else an added row_id.

    Only a column named like an identifier (id, *_id, *_code, key...) is taken: a measure that
    happens to be unique (a population, a price) is not a key, and would become a wrong one
    with the next row.
    """
    names = [name for name, _, _ in columns]
    kinds = {name: kind for name, _, kind in columns}
    if declared:
        name = _resolve(declared, names)
        if kinds[name] not in {"string", "integer", "date", "datetime"}:
            raise IngestError(
                f"Primary key column {name!r} is a {kinds[name]} column: use a string, integer, "
                "date or datetime column with one distinct value per row."
            )
        missing = row_count - stats[name]["non_null"]
        if missing:
            raise IngestError(
                f"Primary key column {name!r} is empty in {missing} rows: a key needs a value in "
                "every row."
            )
        if not _index(connection, name):
            duplicate = connection.execute(
                f"SELECT {quote(name)} FROM {TABLE} GROUP BY 1 HAVING count(*) > 1 LIMIT 1"
            ).fetchall()[0][0]
            raise IngestError(
                f"Primary key column {name!r} has duplicate values (for example {duplicate!r}): "
                "choose a column with one distinct value per row, or leave the key out to get a "
                f"{ROW_ID} column."
            )
        return name

    def rank(name: str) -> tuple[int, int]:
        if name in preferred:
            return (0, names.index(name))
        return (1 + id_like_rank(snake_case(name)), names.index(name))

    candidates = [
        name
        for name in names
        if kinds[name] in {"integer", "string"}
        and (name in preferred or id_like_rank(snake_case(name)) < len(ID_LIKE))
        and stats[name]["non_null"] == row_count
        and stats[name]["distinct"] == row_count
    ]
    for name in sorted(candidates, key=rank):
        if _index(connection, name):
            return name

    added = ROW_ID
    number = 2
    while added in names:
        added = f"{ROW_ID}_{number}"
        number += 1
    # rowid follows the file's order (insertion order is preserved), so row N is the file's row N.
    connection.execute(f"ALTER TABLE {TABLE} ADD COLUMN {quote(added)} BIGINT")
    connection.execute(f"UPDATE {TABLE} SET {quote(added)} = rowid + 1")
    if not _index(connection, added):  # pragma: no cover - rowid is unique by construction
        raise IngestError("Could not index the added row number.")
    return added


# Names of an identifier, best first: id, then customer_id, then key or code, then country_code.
ID_LIKE = (
    ("id",),
    ("_id",),
    ("key", "code", "uuid", "guid"),
    ("_key", "_code", "_uuid", "_guid"),
)


def id_like_rank(api_name: str) -> int:
    """How much an API name looks like an identifier: 0 best, len(ID_LIKE) when it does not."""
    for rank, forms in enumerate(ID_LIKE):
        for form in forms:
            if api_name == form or (form.startswith("_") and api_name.endswith(form)):
                return rank
    return len(ID_LIKE)


def _resolve(declared: str, names: list[str]) -> str:
    """A column named by its name in the file, or by the API name Gateway derives from it."""
    if declared in names:
        return declared
    from datasets.naming import api_names

    for name, api in zip(names, api_names(names), strict=True):
        if api == declared:
            return name
    raise IngestError(
        f"Primary key column {declared!r} is not in the file. Columns: {', '.join(names)}."
    )


def _index(connection: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Declare the column the table's primary key (an ART index); False when it has duplicates."""
    try:
        connection.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY ({quote(name)})")
    except duckdb.ConstraintException:
        return False
    return True
