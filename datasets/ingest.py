"""Ingestion: an uploaded file (CSV/TSV, XLSX, JSON, NDJSON, Parquet) -> a new DuckDB database file.

The file is read once by DuckDB itself (dialect and types sniffed by DuckDB, not by hand) into a
table named `data`, its primary key indexed, and every column profiled (type, enum, min, max).
XLSX is the exception: DuckDB's excel extension cannot be loaded here, so openpyxl streams the
sheet row by row into a typed temporary CSV that DuckDB then reads. Nothing holds the whole file
in Python.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import decimal
import re
import tempfile
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from datasets.naming import snake_case

TABLE = "data"
ENUM_MAX = 50
ROW_ID = "row_id"
# Bounded working memory for an import running inside a web worker; DuckDB spills beyond it.
MEMORY_LIMIT = "1GB"

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
class ColumnProfile:
    """A column of the ingested table: physical name, Gateway type and statistics."""

    physical_name: str
    type: str
    enum: list | None
    min_value: object
    max_value: object


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
) -> Ingested:
    """Write `path` into the new DuckDB file `target` (table `data`, key indexed) and profile it.

    On any failure `target` is removed and IngestError raised: the caller's previous file is
    untouched because ingestion only ever writes a new file.
    """
    fmt = file_format(filename or path.name)
    if target.exists():
        raise IngestError(f"{target.name} already exists.")
    report = progress or (lambda percent: None)
    connection = duckdb.connect(str(target))
    try:
        connection.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        connection.execute("SET temp_directory = ?", [str(target.parent / ".spill")])
        # query_progress() reports nothing unless the progress bar is on; never print it.
        connection.execute("SET enable_progress_bar = true")
        connection.execute("SET enable_progress_bar_print = false")
        report(0.0)
        if fmt == "xlsx":
            _load_xlsx(connection, path, target.parent, report)
        else:
            with _watching(connection, report, start=0.0, end=85.0):
                _load(connection, path, fmt)
        report(85.0)
        ingested = _profile(connection, primary_key, preferred_keys)
        report(95.0)
        connection.execute("CHECKPOINT")
    except IngestError:
        connection.close()
        _remove(target)
        raise
    except duckdb.Error as error:
        connection.close()
        _remove(target)
        raise IngestError(duckdb_message(error)) from None
    except BaseException:
        connection.close()
        _remove(target)
        raise
    connection.close()
    report(100.0)
    return ingested


def _remove(target: Path) -> None:
    for leftover in (target, target.with_name(target.name + ".wal")):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def _watching(connection: duckdb.DuckDBPyConnection, report: Progress, *, start: float, end: float):
    """Poll DuckDB's progress of the running statement from a second thread."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            with contextlib.suppress(duckdb.Error):
                percent = connection.query_progress()
                if percent >= 0:
                    report(start + (end - start) * min(percent, 100.0) / 100.0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


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


def _load(connection: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> None:
    """CREATE TABLE data AS SELECT ... FROM the DuckDB reader of the file, in one pass."""
    source = str(path)
    try:
        described = connection.execute(
            f"DESCRIBE SELECT * FROM {_reader(fmt)}", [source]
        ).fetchall()
    except duckdb.Error as error:
        raise IngestError(_read_failure(fmt, error)) from None
    columns = [(row[0], row[1]) for row in described]
    if fmt == "csv":
        _check_csv_columns(connection, source, columns)
    _reject_nested(columns)
    select = _select_list(columns)
    try:
        connection.execute(f"CREATE TABLE {TABLE} AS SELECT {select} FROM {_reader(fmt)}", [source])
    except duckdb.ConversionException:
        # The sniffer looks at the first rows only; a later value that does not fit the guessed
        # type (an "n/a" in a number column) makes DuckDB scan everything to choose the type.
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        described = connection.execute(
            f"DESCRIBE SELECT * FROM {_reader(fmt, full_sample=True)}", [source]
        ).fetchall()
        columns = [(row[0], row[1]) for row in described]
        _reject_nested(columns)
        try:
            connection.execute(
                f"CREATE TABLE {TABLE} AS SELECT {_select_list(columns)} "
                f"FROM {_reader(fmt, full_sample=True)}",
                [source],
            )
        except duckdb.Error as error:
            raise IngestError(_read_failure(fmt, error)) from None
    except duckdb.Error as error:
        raise IngestError(_read_failure(fmt, error)) from None
    _reject_nested_json(connection, columns)


def _read_failure(fmt: str, error: duckdb.Error) -> str:
    kind = {"csv": "CSV", "json": "JSON", "parquet": "Parquet"}[fmt]
    message = f"Could not read the {kind} file: {duckdb_message(error)}"
    if "not utf-8 encoded" in message.lower():
        message += " Save it as UTF-8 (in Excel: 'CSV UTF-8') and upload it again."
    return message


def _check_csv_columns(
    connection: duckdb.DuckDBPyConnection, source: str, columns: list[tuple[str, str]]
) -> None:
    """A file DuckDB reads as one column whose name holds a delimiter has a ragged row somewhere.

    DuckDB's sniffer then falls back to a single column; reading again with the delimiter named
    explicitly makes DuckDB report the line that does not fit.
    """
    if len(columns) != 1:
        return
    name = columns[0][0]
    for delimiter in (",", ";", "\t", "|"):
        if delimiter in name and (ragged := _ragged_line(source, delimiter)):
            raise IngestError(f"Could not read the CSV file: {ragged}")


def _ragged_line(source: str, delimiter: str) -> str | None:
    """The first line whose number of fields differs from the header's (streamed, not loaded)."""
    shown = "tab" if delimiter == "\t" else repr(delimiter)
    with open(source, encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, [])
        for record in reader:
            if record and len(record) != len(header):
                return (
                    f"line {reader.line_num} has {len(record)} {shown}-separated fields where the "
                    f"header has {len(header)}. Check the delimiter and quoting of that line."
                )
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
        ).fetchone()[0]
        if nested:
            raise IngestError(
                f"Column {name!r} holds nested objects or lists in {nested} rows; flatten it "
                "into plain columns (one value per cell) and upload the file again."
            )


def _select_list(columns: list[tuple[str, str]]) -> str:
    """Every column as read, except types Gateway does not serve (TIME, UUID, JSON...) as text."""
    parts = []
    for name, duckdb_type in columns:
        column = quote(name)
        if gateway_type(duckdb_type) is None:
            parts.append(f"CAST({column} AS VARCHAR) AS {column}")
        else:
            parts.append(column)
    return ", ".join(parts) if parts else "*"


# XLSX -------------------------------------------------------------------------------------------

_XLSX_BATCH_ROWS = 10_000


def _load_xlsx(
    connection: duckdb.DuckDBPyConnection, path: Path, directory: Path, report: Progress
) -> None:
    """Stream the first sheet with openpyxl into a typed temporary CSV, then load it with DuckDB."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise IngestError(
            f"Could not read the XLSX file: not a valid .xlsx workbook ({error})."
        ) from None
    try:
        sheet = workbook.worksheets[0]
        total = sheet.max_row or 0
        with tempfile.NamedTemporaryFile(
            "w",
            suffix=".csv",
            dir=str(directory),
            delete=False,
            encoding="utf-8",
            newline="",
        ) as handle:
            staging = Path(handle.name)
            try:
                names, kinds = _xlsx_to_csv(sheet, handle, total, report)
            except BaseException:
                handle.close()
                staging.unlink(missing_ok=True)
                raise
    finally:
        workbook.close()
    try:
        types = [_xlsx_type(kind) for kind in kinds]
        relation = connection.read_csv(
            str(staging),
            header=False,
            sep=",",
            quotechar='"',
            escapechar='"',
            names=names,
            dtype=types,
        )
        relation.create(TABLE)
    finally:
        staging.unlink(missing_ok=True)


def _xlsx_to_csv(sheet, handle, total: int, report: Progress) -> tuple[list[str], list[set[str]]]:
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
            writer.writerows(batch)
            batch.clear()
            if total:
                report(min(80.0, 80.0 * line / total))
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
    kinds.add("string")
    return text


def _xlsx_type(kinds: set[str]) -> str:
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
        if kind in {"integer", "number", "date", "datetime"}:
            aggregates += [f"min({column})", f"max({column})"]
        if kind == "integer":
            aggregates.append(f"approx_count_distinct({column})")
    values = list(connection.execute(f"SELECT {', '.join(aggregates)} FROM {TABLE}").fetchone())
    row_count = values.pop(0)
    if row_count == 0:
        raise IngestError("The file has a header but no rows.")
    stats: dict[str, dict] = {}
    for name, _, kind in columns:
        entry = {"non_null": values.pop(0), "min": None, "max": None, "distinct": None}
        if kind in {"integer", "number", "date", "datetime"}:
            entry["min"], entry["max"] = _json_value(values.pop(0)), _json_value(values.pop(0))
        if kind == "integer":
            entry["distinct"] = values.pop(0)
        stats[name] = entry

    names = [name for name, _, _ in columns]
    key = _primary_key(connection, columns, stats, row_count, primary_key, preferred_keys)
    profiles = []
    for name, _, kind in columns:
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
            )
        )
    if key not in names:
        # The added row number goes first: it is what a reader looks a row up by.
        profiles.insert(
            0,
            ColumnProfile(
                physical_name=key, type="integer", enum=None, min_value=1, max_value=row_count
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
    """Index the declared key, else a previous key or a unique non-null integer column, else row_id."""
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
            ).fetchone()[0]
            raise IngestError(
                f"Primary key column {name!r} has duplicate values (for example {duplicate!r}): "
                "choose a column with one distinct value per row, or leave the key out to get a "
                f"{ROW_ID} column."
            )
        return name

    def rank(name: str) -> tuple[int, int]:
        api = snake_case(name)
        if name in preferred:
            return (0, names.index(name))
        if api == "id":
            return (1, names.index(name))
        if api.endswith("_id"):
            return (2, names.index(name))
        return (3, names.index(name))

    candidates = [
        name
        for name in names
        if (kinds[name] == "integer" or (name in preferred and kinds[name] == "string"))
        and stats[name]["non_null"] == row_count
        # approx_count_distinct is within a few percent: a column far from unique is skipped
        # without paying for a failed index build.
        and (stats[name]["distinct"] is None or stats[name]["distinct"] >= row_count * 0.9)
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
