"""Foreign SQL sources: add and test them, discover their tables and views, register datasets.

Everything here talks to the source through `datasets.engine.connections.connect` (read-only, with
the source's statement timeout) and SQLAlchemy's inspector and Core: no hand-written catalog SQL,
no user input in SQL text.
"""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from django.conf import settings
from django.db import connections, transaction
from sqlalchemy.engine import URL, Connection, make_url

from datasets.engine import zones
from datasets.engine.connections import connect, source_kind, url_with_password
from datasets.engine.dialects import dialect_of_django_engine, dialect_of_url, source_dialect
from datasets.engine.errors import suggest
from datasets.engine.statistics import RANGED_TYPES
from datasets.measures import unit_from_comment
from datasets.models import SLUG_PATTERN, Column, Dataset, Source
from datasets.naming import api_names
from datasets.selectors import source_url

logger = logging.getLogger(__name__)

ENUM_LIMIT = 50
# A value longer than this is prose or an identifier, not a category a GPT should pick from.
ENUM_VALUE_MAX_CHARS = 100
PII_MODES = ("none", "mask", "hash", "hide")
DESCRIPTION_MAX_CHARS = 300
URL_MAX_CHARS = cast(int, Source._meta.get_field("url").max_length)
SYSTEM_SCHEMAS = {"information_schema", "pg_catalog"}
ENUM_TYPES = {"string", "integer", "boolean"}


class SourceError(Exception):
    """A source or a registration that cannot be done, with a message saying why (never a password)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class DiscoveredTable:
    """A table or view found in a source."""

    name: str
    schema: str
    kind: str  # "table" or "view"

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class SourceLocation:
    """A checked connection URL split for storage: the URL without its password, and the password."""

    kind: str
    url: str
    password: str


@dataclass(frozen=True)
class IntrospectedColumn:
    """A column as introspected: its physical name, Gateway type, or why it is not served."""

    physical_name: str
    type: str
    unsupported: str = ""  # the source's type name when Gateway cannot serve it
    comment: str = ""  # the source's own description of the column (PostgreSQL, MySQL)
    instant: bool = False  # a datetime of moments (datasets/engine/zones.py)
    zone: str = ""  # the zone its type shows moments in (ClickHouse's DateTime('Europe/Berlin'))


# -- URLs and connection tests -------------------------------------------------------------------


def source_location_parse(*, url: str, password: str = "") -> SourceLocation:
    """Check a connection URL and split it into URL-without-password and password.

    A password may be written in the URL's user part or as `?password=` (`?passwd=` for MySQL):
    either way it leaves the URL and is stored encrypted. The URL is refused, with the reason,
    when it carries a driver option outside its dialect's allow-list or points at Gateway's own
    database or files.
    """
    url = url.strip()
    if not url:
        raise SourceError(
            "Give a connection URL: postgresql://user:pass@host:5432/db, mysql://… or sqlite:///path."
        )
    try:
        dialect = dialect_of_url(url)
        kind = dialect.kind
        parsed = make_url(url)
    except ValueError as error:
        raise SourceError(_scrub(str(error), *_passwords_in(url))) from None
    except Exception:
        raise SourceError(
            "Not a database URL. Use postgresql://user:pass@host:5432/db, "
            "mysql://user:pass@host:3306/db or sqlite:////absolute/path.db."
        ) from None
    if parsed.host and "@" in parsed.host:
        raise SourceError(
            "The URL has more than one @: write an @ in the user name or password as %40."
        )
    options = dict(parsed.query)
    given = [options.pop(key) for key in PASSWORD_OPTIONS if key in options]
    in_query = [value for value in given if isinstance(value, str)]
    if len(in_query) < len(given) or len(set(in_query)) > 1:
        raise SourceError("The URL gives its password more than once: give it once.")
    if in_query and parsed.password and parsed.password != in_query[0]:
        raise SourceError("The URL gives two different passwords: give it once.")
    password = parsed.password or (in_query[0] if in_query else "") or password or ""
    parsed = parsed.set(query=options)
    if dialect.is_file:
        if not parsed.database or parsed.database == ":memory:":
            raise SourceError("A SQLite source is a file: use sqlite:////absolute/path/to/file.db.")
        if parsed.database.startswith("file:"):
            raise SourceError(
                "Write the SQLite file's path, not a file: URI: sqlite:////absolute/path/to/file.db."
            )
        # Relative paths would depend on the directory the server starts in: keep an absolute one
        # (symbolic links and `..` resolved, so the checks below see the file that will be opened).
        path = Path(parsed.database).expanduser().resolve()
        parsed = parsed.set(database=str(path))
        password = ""
    elif dialect.needs_database and not parsed.database:
        raise SourceError(
            f"Add the database name to the URL: {kind}://user:pass@host:{dialect.default_port}/database."
        )
    elif not parsed.host:
        raise SourceError(
            f"Add the host to the URL: {kind}://user:pass@host:{dialect.default_port}/database."
        )
    source_location_check(kind=kind, url=parsed)
    stored = _without_password(parsed).render_as_string(hide_password=False)
    if len(stored) > URL_MAX_CHARS:
        raise SourceError(f"The URL is too long: at most {URL_MAX_CHARS} characters.")
    return SourceLocation(kind=kind, url=stored, password=password)


def source_connection_check(*, location: SourceLocation, timeout: int) -> None:
    """Connect to a source and run a trivial query; SourceError with the reason when that fails."""
    with _connection(
        url_with_password(location.url, location.password), timeout=timeout
    ) as connection:
        connection.execute(sa.select(sa.literal(1))).scalar()


def source_create(
    *, name: str, url: str, statement_timeout: int = 10, password: str = ""
) -> Source:
    """Add a source after testing its connection; the password is stored encrypted, apart from the URL."""
    name = name.strip()
    if not name:
        raise SourceError("Give the source a name.")
    if Source.objects.filter(name=name).exists():
        raise SourceError(f"A source named {name!r} already exists.")
    _check_timeout(statement_timeout)
    location = source_location_parse(url=url, password=password)
    source_connection_check(location=location, timeout=statement_timeout)
    source = Source(name=name, kind=location.kind, url=location.url)
    source.statement_timeout = statement_timeout
    source.password = location.password
    source.save()
    return source


def source_update(
    *,
    source: Source,
    name: str | None = None,
    url: str | None = None,
    password: str | None = None,
    statement_timeout: int | None = None,
) -> Source:
    """Change a source after testing the new settings; password None keeps the stored one."""
    if statement_timeout is not None:
        _check_timeout(statement_timeout)
    if name is not None and Source.objects.filter(name=name.strip()).exclude(pk=source.pk).exists():
        raise SourceError(f"A source named {name.strip()!r} already exists.")
    try:
        kept = source.password if password is None else password
    except ValueError as error:  # encrypted under another GATEWAY_SECRET_KEY
        raise SourceError(f"{error} Give the password again.") from None
    location = source_location_parse(url=url if url is not None else source.url, password=kept)
    timeout = statement_timeout or source.statement_timeout
    source_connection_check(location=location, timeout=timeout)
    if name is not None:
        source.name = name.strip()
    source.kind, source.url, source.statement_timeout = location.kind, location.url, timeout
    source.password = location.password
    source.save()
    return source


def source_test(*, source: Source) -> None:
    """Test a stored source's connection; SourceError with the reason when it cannot be reached."""
    with _source_connection(source) as connection:
        connection.execute(sa.select(sa.literal(1))).scalar()


# -- What a source may be -----------------------------------------------------------------------

# `?password=` is a password like the URL's user part: moved out of the URL and stored encrypted.
PASSWORD_OPTIONS = ("password", "passwd")
# Host names that reach this machine's own database server as 127.0.0.1 does.
LOOPBACK_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def source_location_check(
    *, kind: str, url: URL, databases: Iterable[Mapping[str, Any]] | None = None
) -> None:
    """Refuse, with the reason, a source URL Gateway must not connect to.

    Every way of reaching a source goes through here (the admin form, `add_source`, a connection
    test, discovery, registration): driver options outside the dialect's allow-list, Gateway's
    own database (PostgreSQL and MySQL: the same server, port and database; SQLite: the same
    file), and for SQLite any file inside the data directory or Gateway's own directory.
    `databases` are Django-style database settings (ENGINE, NAME, HOST, PORT); by default those
    of Gateway's own connections.
    """
    own_databases = _gateway_databases(databases)
    _check_options(kind, url)
    if source_dialect(kind).is_file:
        _check_sqlite_file(url.database or "", own_databases)
        return
    host, port, database = _server_address(kind, url.host, url.port, url.database)
    for own in own_databases:
        if own["kind"] != kind:
            continue
        if (host, port, database) == _server_address(
            kind, own["host"], own["port"], own["database"]
        ):
            raise SourceError(_own_database_reason(kind, url))


def _check_options(kind: str, url: URL) -> None:
    allowed = source_dialect(kind).url_options
    for option, value in url.query.items():
        if option in PASSWORD_OPTIONS:
            continue  # a password stored before it was moved out of the URL
        if option not in allowed:
            if not allowed:
                raise SourceError(
                    f"Option {option!r} is not allowed: a {_kind_label(kind)} URL takes no "
                    "option (the file is always opened read-only)."
                )
            raise SourceError(
                f"Option {option!r} is not allowed in a {_kind_label(kind)} URL. "
                f"Allowed options: {', '.join(sorted(allowed))}."
            )
        if not isinstance(value, str):
            raise SourceError(f"Option {option!r} is given more than once: give it once.")
        problem = allowed[option](value)
        if problem:
            raise SourceError(f"Invalid value for option {option!r}: use {problem}.")


def _kind_label(kind: str) -> str:
    return source_dialect(kind).label


def _check_sqlite_file(database: str, own_databases: list[dict]) -> None:
    path = Path(database).expanduser().resolve()
    for own in own_databases:
        is_file = source_dialect(own["kind"]).is_file
        if is_file and own["database"] and _same_file(path, own["database"]):
            raise SourceError(
                f"Refused: {path} is Gateway's own database. A source must be another database: "
                "publishing Gateway's own tables would publish its sessions, users and keys."
            )
    data_dir = Path(settings.GATEWAY_DATA_DIR).resolve()
    if path.is_relative_to(data_dir):
        raise SourceError(
            f"Refused: {path} is inside Gateway's data directory ({data_dir}), which holds "
            "Gateway's own database, secret key and dataset files. Put the file elsewhere."
        )
    project_dir = Path(settings.BASE_DIR).resolve()
    if path.is_relative_to(project_dir):
        raise SourceError(
            f"Refused: {path} is inside Gateway's own directory ({project_dir}). "
            "Put the file elsewhere."
        )


def _same_file(path: Path, other: str) -> bool:
    other_path = Path(other).expanduser().resolve()
    if path == other_path:
        return True
    try:  # a hard link is the same file under another name
        return os.path.samefile(path, other_path)
    except OSError:
        return False


def _gateway_databases(configs: Iterable[Mapping[str, Any]] | None = None) -> list[dict]:
    """Gateway's own databases, as its connections reach them (the test database under tests)."""
    if configs is None:
        configs = [{**connections[alias].settings_dict, "ALIAS": alias} for alias in connections]
    databases = []
    for config in configs:
        dialect = dialect_of_django_engine(str(config.get("ENGINE", "")))
        if dialect is None:
            continue
        kind, name = dialect.kind, str(config.get("NAME") or "")
        # An in-memory database is no file a source could name.
        if dialect.is_file and (
            name.startswith("file:") or name == ":memory:" or "mode=memory" in name
        ):
            name = ""
        databases.append(
            {
                "alias": config.get("ALIAS"),
                "kind": kind,
                "host": str(config.get("HOST") or ""),
                "port": config.get("PORT") or None,
                "database": name,
            }
        )
    return databases


def _server_address(
    kind: str, host: str | None, port: int | str | None, database: str | None
) -> tuple[str, int, str]:
    """Host, port and database as a comparable address: every loopback spelling is one host."""
    name = (host or "").strip().strip("[]").rstrip(".").lower()
    if name.startswith("/"):
        name = ""  # a Unix socket directory: this machine
    else:
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            if address.is_loopback or address.is_unspecified:
                name = ""
            elif isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                name = str(address.ipv4_mapped)
    if name in LOOPBACK_NAMES:
        name = "loopback"
    try:
        number = int(port) if port not in (None, "") else source_dialect(kind).default_port
    except (TypeError, ValueError):
        number = -1
    # MySQL database names are case-insensitive on some systems: compare them as such.
    database = (database or "").strip()
    folded = source_dialect(kind).database_names_case_insensitive
    return name, number, database.lower() if folded else database


def _own_database_reason(kind: str, url: URL) -> str:
    return (
        f"Refused: {_kind_label(kind)} database {url.database!r} on {url.host}:"
        f"{url.port or source_dialect(kind).default_port} is Gateway's own database. A source must be another "
        "database: publishing Gateway's own tables would publish its sessions, users and keys."
    )


def _check_not_gateway_server(kind: str, connection: Connection, url: URL) -> None:
    # Server and database identity, compared after connecting: it catches Gateway's own database
    # reached under another name (a DNS alias, another address of the same machine).
    sql = source_dialect(kind).identity_sql
    own_aliases = [
        own["alias"] for own in _gateway_databases() if own["kind"] == kind and own["alias"]
    ]
    if not sql or not own_aliases:
        return
    try:
        row = connection.execute(sa.text(sql)).first()
    except sa.exc.DBAPIError:
        # A compatible server without these functions cannot be Gateway's own database server.
        connection.rollback()
        return
    finally:
        if connection.in_transaction():
            connection.rollback()
    source_identity = tuple(str(value) for value in row or ())
    for alias in own_aliases:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute(sql)
                own_identity = tuple(str(value) for value in cursor.fetchone() or ())
        except Exception as error:  # Gateway's own database is checked elsewhere (/healthz)
            logger.warning("Could not read the identity of database %s: %s", alias, error)
            continue
        if source_identity and source_identity == own_identity:
            raise SourceError(_own_database_reason(kind, url))


# -- Discovery -----------------------------------------------------------------------------------


def source_discover(*, source: Source) -> list[DiscoveredTable]:
    """The tables and views of a source (PostgreSQL: every non-system schema), sorted by schema and name."""
    found: list[DiscoveredTable] = []
    with _source_connection(source) as connection:
        inspector = sa.inspect(connection)
        for schema in _schemas(inspector, source.kind):
            for name in inspector.get_table_names(schema=schema):
                found.append(DiscoveredTable(name=name, schema=schema, kind="table"))
            views = set(inspector.get_view_names(schema=schema))
            if source_dialect(source.kind).materialized_views:
                views |= set(inspector.get_materialized_view_names(schema=schema))
            for name in sorted(views):
                found.append(DiscoveredTable(name=name, schema=schema, kind="view"))
    return sorted(found, key=lambda table: (table.schema, table.name))


def _schemas(inspector: sa.Inspector, kind: str) -> list[str]:
    default = inspector.default_schema_name or ""
    if not source_dialect(kind).named_schemas:
        # MySQL: the URL's database only (other databases on the server are other sources);
        # SQLite: the file's main schema.
        return [default]
    schemas = [
        schema
        for schema in inspector.get_schema_names()
        if schema not in SYSTEM_SCHEMAS and not schema.startswith(("pg_toast", "pg_temp"))
    ]
    # The default schema first: it is the one most sources use.
    return sorted(schemas, key=lambda schema: (schema != default, schema))


# -- Registration --------------------------------------------------------------------------------


def dataset_register(
    *,
    source: Source,
    table: str,
    slug: str,
    schema_name: str = "",
    title: str | None = None,
    description: str = "",
    primary_key: str | None = None,
    pii: Mapping[str, str] | None = None,
) -> Dataset:
    """Register a table or view of a source as a dataset: columns, types, primary key and statistics."""
    _check_slug(slug)
    if len(description) > DESCRIPTION_MAX_CHARS:
        raise SourceError(
            f"The description has {len(description)} characters: at most {DESCRIPTION_MAX_CHARS} (it is shown to the GPT)."
        )
    with _source_connection(source) as connection:
        inspector = sa.inspect(connection)
        table, schema = _resolve_table(inspector, source, table, schema_name)
        introspected = _introspect_columns(inspector, connection, source.kind, table, schema)
        own_key = (
            inspector.get_pk_constraint(table, schema=schema or None).get("constrained_columns")
            or []
        )
        if not description:
            description = _table_comment(inspector, table, schema)
        time_zone = _source_zone(connection, source, introspected)

        physical_names = [column.physical_name for column in introspected]
        names = api_names(physical_names)
        by_any_name = _column_lookup(introspected, names)
        pk_physical = _primary_key(primary_key, own_key, by_any_name, names)
        modes = _pii_modes(pii or {}, by_any_name, names)

        dataset = Dataset(
            slug=slug,
            title=(title or "").strip() or _title(table),
            description=description,
            source=source,
            table=table,
            schema_name=schema,
            primary_key=names[physical_names.index(pk_physical)] if pk_physical else "",
            time_zone=time_zone,
        )
        columns = [
            _new_column(column, name, position, modes.get(column.physical_name, "none"))
            for position, (column, name) in enumerate(zip(introspected, names, strict=True))
        ]
        _fill_statistics(connection, source, dataset, columns)
    with transaction.atomic():
        if Dataset.objects.filter(slug=slug).exists():
            raise SourceError(f"A dataset with slug {slug!r} already exists: choose another slug.")
        dataset.save()
        for column in columns:
            column.dataset = dataset
        Column.objects.bulk_create(columns)
    return dataset


def dataset_statistics_refresh(*, dataset: Dataset) -> Dataset:
    """Recompute a SQL dataset's row count and its columns' enum, min and max from the source."""
    source = dataset.source
    if source is None:
        raise SourceError(
            f"Dataset {dataset.slug!r} is an uploaded file: its statistics are computed at import."
        )
    columns = list(dataset.columns.order_by("position"))
    with _source_connection(source) as connection:
        _read_moments(connection, source, dataset, columns)
        _fill_statistics(connection, source, dataset, columns)
    with transaction.atomic():
        Column.objects.bulk_update(
            columns,
            ["instant", "enum", "min_value", "max_value", "distinct_count", "null_count", "unique"],
        )
        dataset.save(update_fields=["row_count", "updated"])
    return dataset


def _resolve_table(
    inspector: sa.Inspector, source: Source, table: str, schema_name: str
) -> tuple[str, str]:
    """The table's name and schema as stored on the dataset ('' for the default schema)."""
    table, schema_name = table.strip(), schema_name.strip()
    if not table:
        raise SourceError("Give the name of a table or view.")
    default = inspector.default_schema_name or ""
    schema = schema_name or default
    if source_dialect(source.kind).named_schemas:
        known_schemas = inspector.get_schema_names()
        if schema not in known_schemas:
            raise SourceError(
                f"Source {source.name!r} has no schema {schema!r}."
                + suggest(schema, _schemas(inspector, source.kind), what="schemas")
            )
    elif schema != default:
        raise SourceError(
            f"A {source.get_kind_display()} source has a single schema ({default!r}): leave the schema out."
        )
    candidates = _relations(inspector, source.kind, schema)
    if table not in candidates and "." in table and not schema_name:
        # `public.orders` as printed by discover_source.
        maybe_schema, maybe_table = table.split(".", 1)
        if maybe_schema == default or (
            source_dialect(source.kind).named_schemas
            and maybe_schema in inspector.get_schema_names()
        ):
            return _resolve_table(inspector, source, maybe_table, maybe_schema)
    if table not in candidates:
        raise SourceError(
            f"Source {source.name!r} has no table or view {table!r} in schema {schema!r}."
            + suggest(table, candidates, what="tables and views")
        )
    return table, "" if schema == default else schema


def _relations(inspector: sa.Inspector, kind: str, schema: str) -> list[str]:
    names = inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
    if source_dialect(kind).materialized_views:
        names += inspector.get_materialized_view_names(schema=schema)
    return sorted(set(names))


def _read_moments(
    connection: Connection, source: Source, dataset: Dataset, columns: list[Column]
) -> None:
    """Which datetime columns hold moments, read again from the source's types (not saved)."""
    try:
        inspector = sa.inspect(connection)
        introspected = _introspect_columns(
            inspector, connection, source.kind, dataset.table, dataset.schema_name
        )
    except (sa.exc.NoSuchTableError, SourceError) as error:  # statistics say the rest
        logger.warning("Types not read again for %s: %s", dataset.slug, error)
        return
    instant = {column.physical_name: column.instant for column in introspected}
    for column in columns:
        column.instant = column.type == "datetime" and instant.get(column.physical_name, False)


def _introspect_columns(
    inspector: sa.Inspector, connection: Connection, kind: str, table: str, schema: str
) -> list[IntrospectedColumn]:
    result = []
    for reflected in inspector.get_columns(table, schema=schema or None):
        physical, sql_type = reflected["name"], reflected["type"]
        comment = reflected.get("comment") or ""
        gateway_type = column_type(sql_type)
        untyped = isinstance(sql_type, sa.types.NullType)
        if gateway_type is None and untyped and source_dialect(kind).untyped_columns:
            # SQLite columns may have no declared type (view expressions, `CREATE TABLE t(a, b)`):
            # the storage class of a stored value says what they hold.
            gateway_type = _sqlite_storage_type(connection, table, physical)
        if gateway_type is None:
            result.append(
                IntrospectedColumn(
                    physical, "string", unsupported=_type_name(sql_type), comment=comment
                )
            )
        else:
            dialect = source_dialect(kind)
            instant = gateway_type == "datetime" and dialect.instant(sql_type)
            zone = dialect.column_zone(sql_type) if instant else ""
            result.append(
                IntrospectedColumn(
                    physical, gateway_type, comment=comment, instant=instant, zone=zone
                )
            )
    if not result:
        raise SourceError(f"{table!r} has no columns that can be read.")
    return result


def column_type(sql_type: sa.types.TypeEngine) -> str | None:
    """The Gateway type of a SQLAlchemy type, or None when Gateway cannot serve it.

    MySQL's TINYINT(1) (what BOOLEAN means there) stays an integer: the driver returns 0 and 1,
    and a column declared boolean must hold true and false. A type that wraps another (ClickHouse's
    Nullable and LowCardinality) is the type it wraps.
    """
    while (nested := getattr(sql_type, "nested_type", None)) is not None:
        sql_type = nested
    if isinstance(sql_type, sa.Boolean):
        return "boolean"
    if isinstance(sql_type, sa.Integer):
        return "integer"
    if isinstance(sql_type, sa.Numeric | sa.Float):  # Numeric, Decimal, Float, Double, Real
        return "number"
    if isinstance(sql_type, sa.DateTime):  # DATETIME, TIMESTAMP (with or without time zone)
        return "datetime"
    if isinstance(sql_type, sa.Date):
        return "date"
    if isinstance(sql_type, sa.Uuid):
        return "string"
    if isinstance(sql_type, sa.String) and not _is_unsupported_string(sql_type):
        return "string"  # VARCHAR, CHAR, TEXT, ENUM
    return None  # JSON, arrays, binary, time, intervals, network and geometry types


def _is_unsupported_string(sql_type: sa.types.TypeEngine) -> bool:
    # MySQL SET values come back as Python sets; PostgreSQL tsvector is a String subclass too.
    return type(sql_type).__name__ in {"SET", "TSVECTOR"}


def _type_name(sql_type: sa.types.TypeEngine) -> str:
    try:
        return str(sql_type.compile())
    except Exception:
        return type(sql_type).__name__


def _sqlite_storage_type(connection: Connection, table: str, physical: str) -> str | None:
    column: sa.ColumnClause[Any] = sa.column(physical)
    query = (
        sa.select(sa.func.typeof(column))
        .select_from(sa.table(table))
        .where(column.is_not(None))
        .limit(1)
    )
    storage = connection.execute(query).scalar()
    return {"integer": "integer", "real": "number", "text": "string"}.get(storage or "")


def _column_lookup(introspected: list[IntrospectedColumn], names: list[str]) -> dict[str, str]:
    """Physical name of each column, looked up by physical name or by API name."""
    lookup = {name: column.physical_name for column, name in zip(introspected, names, strict=True)}
    lookup.update({column.physical_name: column.physical_name for column in introspected})
    return lookup


def _primary_key(
    given: str | None, own_key: list[str], lookup: dict[str, str], names: list[str]
) -> str | None:
    """Physical name of the primary key: the one given (it must exist), else the table's own single one."""
    if given:
        if given not in lookup:
            raise SourceError(
                f"Unknown primary key column {given!r}." + suggest(given, names, what="columns")
            )
        return lookup[given]
    if len(own_key) == 1 and own_key[0] in lookup:
        return own_key[0]
    return None


def _pii_modes(pii: Mapping[str, str], lookup: dict[str, str], names: list[str]) -> dict[str, str]:
    """PII modes keyed by physical name, from a mapping keyed by physical or API name."""
    modes = {}
    for key, mode in pii.items():
        if mode not in PII_MODES:
            raise SourceError(
                f"Unknown pii mode {mode!r} for column {key!r}: use mask, hash or hide."
            )
        if key not in lookup:
            raise SourceError(
                f"Unknown column {key!r} in pii." + suggest(key, names, what="columns")
            )
        modes[lookup[key]] = mode
    return modes


def _new_column(column: IntrospectedColumn, name: str, position: int, pii: str) -> Column:
    """A registered column; its description and unit from the source's comment on it, if any
    ("Flipper length [mm]": the unit in brackets)."""
    served = not column.unsupported
    description, unit = unit_from_comment(column.comment)
    return Column(
        position=position,
        physical_name=column.physical_name,
        name=name,
        type=column.type,
        instant=column.instant,
        description=(
            description
            if served
            else f"Not served: the source type {column.unsupported} is not supported by Gateway."
        )[:300],
        unit=unit if served else "",
        exposed=served,
        filterable=served,
        sortable=served,
        searchable=served and column.type == "string",
        pii=pii,
    )


def _table_comment(inspector: sa.Inspector, table: str, schema: str) -> str:
    """The source's own description of a table or view (PostgreSQL, MySQL), or ""."""
    try:
        comment = inspector.get_table_comment(table, schema=schema or None).get("text")
    except NotImplementedError:  # SQLite and ClickHouse keep none
        return ""
    return " ".join((comment or "").split())[:DESCRIPTION_MAX_CHARS]


def _source_zone(connection: Connection, source: Source, columns: list[IntrospectedColumn]) -> str:
    """A new dataset's default zone: the one its columns' types name when they agree on one
    (ClickHouse's DateTime('America/New_York')), else the server's own; UTC when that is none
    Gateway knows, or one the server cannot count dates in."""
    named = {column.zone for column in columns if column.zone and zones.is_zone(column.zone)}
    sql = source_dialect(source.kind).zone_sql
    if len(named) == 1:
        zone = zones.zone_of(named.pop())
    elif sql is None:
        return zones.DEFAULT
    else:
        zone = zones.zone_of(_statistic(connection, source, sa.text(sql)))
    return zone if _counts_dates_in(connection, source, zone) else zones.DEFAULT


def _counts_dates_in(connection: Connection, source: Source, zone: str) -> bool:
    """Can the source count a moment's dates in the zone? MySQL needs its time zone tables."""
    dialect = source_dialect(source.kind)
    if not dialect.zones_may_be_missing or zone in zones.UTC_NAMES:
        return True
    local = dialect.sql.local(sa.literal("2000-01-01 00:00:00"), zone)
    return _statistic(connection, source, sa.select(local)) is not None


def dataset_time_zone_check(*, dataset: Dataset, zone: str) -> None:
    """Refuse a zone the dataset's source cannot count its moments' dates in (SourceError)."""
    source = dataset.source
    if source is None or not zone or not dataset.columns.filter(instant=True).exists():
        return
    with _source_connection(source) as connection:
        if _counts_dates_in(connection, source, zone):
            return
    raise SourceError(
        f"The server of source {source.name!r} cannot count dates in {zone}: it has no "
        "time zone tables. Load them (mysql_tzinfo_to_sql /usr/share/zoneinfo | mysql -u root "
        "mysql) or choose UTC."
    )


def _title(table: str) -> str:
    words = re.sub(r"[_\-]+", " ", table).strip()
    return (words[:1].upper() + words[1:])[:200] or table


def _check_slug(slug: str) -> None:
    if not re.match(SLUG_PATTERN, slug or ""):
        raise SourceError(
            f"Invalid slug {slug!r}: lower-case letters, digits and _, starting with a letter, at most 40 characters."
        )
    if Dataset.objects.filter(slug=slug).exists():
        raise SourceError(f"A dataset with slug {slug!r} already exists: choose another slug.")


def _check_timeout(timeout: int) -> None:
    if not isinstance(timeout, int) or not 1 <= timeout <= 600:
        raise SourceError(f"Invalid statement timeout {timeout!r}: seconds from 1 to 600.")


# -- Statistics ----------------------------------------------------------------------------------


def _fill_statistics(
    connection: Connection, source: Source, dataset: Dataset, columns: list[Column]
) -> None:
    """Set dataset.row_count and each column's enum, min, max, distinct and null counts (not
    saved), and a new column's aggregation.

    Best effort, bounded by the statement timeout: a statistic whose query fails or times out is
    left empty rather than failing the registration. PII columns never get values (they would
    be published in the schema); masked and hashed ones get their counts, which show none.
    """
    from datasets.measures import aggregation_default

    target = sa.table(dataset.table, schema=dataset.schema_name or None)
    pk_name = dataset.primary_key
    dataset.row_count = _statistic(
        connection, source, sa.select(sa.func.count()).select_from(target)
    )
    ranged = []
    counted = []
    for column in columns:
        if column._state.adding:  # registration: the admin's choice is kept on refresh
            column.aggregation = aggregation_default(
                column.name, column.type, primary_key=column.name == pk_name
            )
        column.enum = column.min_value = column.max_value = None
        column.distinct_count = column.null_count = column.unique = None
        if column.exposed and column.pii != "hide":
            counted.append(column)
        if not column.exposed or column.pii != "none":
            continue
        if column.type in RANGED_TYPES or column.name == pk_name:
            ranged.append(column)  # a text key's range gives the schema a real example key
        if column.type in ENUM_TYPES and column.name != pk_name:
            column.enum = _enum(connection, source, target, column)
    if ranged:
        expressions: list[sa.ColumnElement[Any]] = []
        moment = source_dialect(source.kind).sql.moment
        for column in ranged:
            physical: sa.ColumnClause[Any] = sa.column(column.physical_name)
            low, high = sa.func.min(physical), sa.func.max(physical)
            expressions += [moment(low), moment(high)] if column.instant else [low, high]
        query = sa.select(*expressions).select_from(target)
        row = _statistic(connection, source, query, scalar=False)
        if row is not None:
            for index, column in enumerate(ranged):
                column.min_value = _json_value(row[2 * index], column.type)
                column.max_value = _json_value(row[2 * index + 1], column.type)
    if counted and dataset.row_count is not None:
        expressions = []
        for column in counted:
            physical = sa.column(column.physical_name)
            expressions += [sa.func.count(physical), sa.func.count(sa.distinct(physical))]
        row = _statistic(
            connection, source, sa.select(*expressions).select_from(target), scalar=False
        )
        if row is not None:
            for index, column in enumerate(counted):
                present, distinct = int(row[2 * index]), int(row[2 * index + 1])
                column.distinct_count = distinct
                column.null_count = max(dataset.row_count - present, 0)
                column.unique = 0 < distinct == present


def _enum(connection: Connection, source: Source, target: sa.TableClause, column: Column):
    physical: sa.ColumnClause[Any] = sa.column(column.physical_name)
    # LIMIT 51 distinct values: enough to know whether there are more than 50, never all of them.
    query = (
        sa.select(physical)
        .select_from(target)
        .where(physical.is_not(None))
        .distinct()
        .order_by(physical)
        .limit(ENUM_LIMIT + 1)
    )
    rows = _statistic(connection, source, query, scalar=False, many=True)
    if rows is None or len(rows) > ENUM_LIMIT:
        return None
    values = []
    for (value,) in rows:
        value = _json_value(value, column.type)
        if isinstance(value, str) and len(value) > ENUM_VALUE_MAX_CHARS:
            return None
        if value not in values:
            values.append(value)
    return values


def _statistic(
    connection: Connection, source: Source, query, *, scalar: bool = True, many: bool = False
):
    _sqlite_deadline(connection, source)
    try:
        result = connection.execute(query)
        if many:
            return result.fetchall()
        return result.scalar() if scalar else result.first()
    except sa.exc.DBAPIError as error:
        logger.warning("Statistic skipped for source %s: %s", source.name, _reason(error))
        # PostgreSQL refuses every statement after an error until the transaction ends.
        connection.rollback()
        return None
    finally:
        _sqlite_deadline(connection, source, clear=True)


def _sqlite_deadline(connection: Connection, source: Source, *, clear: bool = False) -> None:
    """SQLite has no statement timeout: arm the progress-handler deadline that connect() installs."""
    dbapi = connection.connection.dbapi_connection
    state = getattr(dbapi, "gateway_deadline", None)
    if state is not None:
        state["deadline"] = None if clear else time.monotonic() + source.statement_timeout


def _json_value(value: Any, gateway_type: str) -> Any:
    """A statistic value as JSON: numbers as numbers, dates and datetimes as ISO strings."""
    if value is None:
        return None
    if gateway_type == "boolean":
        return bool(value)
    if gateway_type == "integer":
        return int(value)
    if gateway_type == "number":
        return float(value) if isinstance(value, decimal.Decimal | float) else value
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID | bytes):
        return str(value)
    return value


# -- Connections and their errors ----------------------------------------------------------------


@contextmanager
def _source_connection(source: Source) -> Iterator[Connection]:
    try:
        url = source_url(source)
    except ValueError as error:  # a password encrypted under another secret key
        raise SourceError(f"Source {source.name!r}: {error}") from None
    with _connection(url, timeout=source.statement_timeout, name=source.name) as connection:
        yield connection


@contextmanager
def _connection(url: str, *, timeout: int, name: str = "") -> Iterator[Connection]:
    """A connection to a source; any failure to connect becomes a SourceError naming the reason.

    The URL is checked first (`source_location_check`), and the server once connected, so a
    source stored before a rule existed is refused too.
    """
    parsed = make_url(url)
    passwords = _passwords_in(url)
    where = _describe(parsed, name)
    kind = source_kind(url)
    source_location_check(kind=kind, url=parsed)
    if source_dialect(kind).is_file and parsed.database and not Path(parsed.database).is_file():
        raise SourceError(f"Cannot open {where}: the file {parsed.database} does not exist.")
    engine = connect(url, timeout=timeout, pooled=False)
    try:
        try:
            connection = engine.connect()
        except sa.exc.SQLAlchemyError as error:
            raise SourceError(f"Cannot connect to {where}: {_reason(error, *passwords)}") from None
        except OSError as error:
            raise SourceError(
                f"Cannot connect to {where}: {_scrub(str(error), *passwords)}"
            ) from None
        except Exception as error:  # a server that breaks the protocol, or asks for a file
            raise SourceError(
                f"Cannot connect to {where}: {_misbehaving(error, *passwords)}"
            ) from None
        with connection:
            try:
                _check_not_gateway_server(kind, connection, parsed)
                yield connection
            except sa.exc.DBAPIError as error:  # lost connection, permission denied, timeout
                raise SourceError(f"{where}: {_reason(error, *passwords)}") from None
            except RuntimeError as error:  # the driver refused what the server asked
                raise SourceError(f"{where}: {_misbehaving(error, *passwords)}") from None
    finally:
        engine.dispose()


def _misbehaving(error: Exception, *passwords: str) -> str:
    """Why a server that does not speak its protocol as expected was left."""
    text = str(error)
    if "LOAD_LOCAL" in text or "LOCAL INFILE" in text.upper():
        return (
            "the server asked to read a file from Gateway's machine (LOAD DATA LOCAL INFILE). "
            "Gateway never sends files: the connection was closed."
        )
    detail = _scrub(" ".join(text.split())[:200], *passwords)
    return f"the server broke the database protocol ({type(error).__name__}: {detail})."


def _describe(url: URL, name: str) -> str:
    label = f"source {name!r}" if name else "the source"
    dialect = dialect_of_url(url)
    if dialect.is_file:
        return f"{label} ({dialect.label} file {url.database})"
    port = url.port or dialect.default_port
    kind = dialect.kind
    database = f", database {url.database!r}" if url.database else ""
    return f"{label} ({kind} at {url.host}:{port}{database})"


def _reason(error: Exception, *passwords: str) -> str:
    """The driver's own explanation, on one line, without the password."""
    original = getattr(error, "orig", None) or error
    args: tuple[Any, ...] = getattr(original, "args", ())
    # PyMySQL errors are (code, message) pairs; psycopg and sqlite3 carry the message alone.
    pymysql_style = len(args) == 2 and isinstance(args[0], int)
    text = str(args[1]) if pymysql_style else str(original)
    text = re.sub(r"^connection failed:\s*", "", text.strip())
    text = re.sub(r"connection to server at \"[^\"]*\", port \d+ failed:\s*", "", text)
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    text = text.replace("FATAL:  ", "")
    if "timeout expired" in text or "timed out" in text:
        text += " (no answer in time: check the host, the port and any firewall)"
    return _scrub(text, *passwords).rstrip(".") + "."


# A password at least this long is removed wherever it appears; a shorter one only where it
# stands alone, so that a password "M" does not turn "MySQL" into "***ySQL".
SCRUB_ANYWHERE_CHARS = 8


def _scrub(text: str, *passwords: str) -> str:
    """The text without the passwords, as typed or percent-encoded as in a URL."""
    for password in passwords:
        if not password:
            continue
        forms = sorted({password, quote(password, safe=""), quote_plus(password)}, key=len)
        for form in reversed(forms):
            if len(form) >= SCRUB_ANYWHERE_CHARS:
                text = text.replace(form, "***")
            else:
                pattern = rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])"
                text = re.sub(pattern, "***", text)
    return text


def _passwords_in(url: str) -> list[str]:
    """Every password a URL carries: its user part and `?password=` (even when it does not parse)."""
    try:
        parsed = make_url(url)
    except Exception:
        match = re.match(r"^[^:]+://[^:/@]*:([^@]*)@", url)
        found = [match.group(1)] if match else []
        found += re.findall(r"[?&](?:password|passwd)=([^&#]*)", url)
        return found
    found = [parsed.password or ""]
    for key in PASSWORD_OPTIONS:
        value = parsed.query.get(key)
        found += [value] if isinstance(value, str) else list(value or ())
    return [password for password in found if password]


def url_without_password(url: str) -> str:
    """The URL as typed with its password removed, even when the URL does not parse."""
    text = url.strip()
    # Up to the last @: an unencoded @ in the password must not leave part of it behind.
    match = re.match(r"^([A-Za-z0-9+.\-]+://)([^:/@]*):(.*)@([^@]*)$", text)
    if match:
        text = f"{match[1]}{match[2]}@{match[4]}"
    text = re.sub(r"(?<=[?&])(?:password|passwd)=[^&#]*(?:&|(?=#)|$)", "", text)
    return re.sub(r"[?&]$", "", text)


def _without_password(url: URL) -> URL:
    # URL.set(password=None) means "unchanged": rebuild the URL to drop it.
    return URL.create(
        drivername=url.drivername,
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
