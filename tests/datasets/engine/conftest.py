"""The sales dataset on each of the five backends: `sales` runs a test once per backend, and `duck`
is the DuckDB copy every other backend's answers are compared with."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from datasets.engine.connections import duckdb_files, source_engine
from datasets.engine.spec import DatasetSpec, SourceSpec
from tests.datasets.engine.sales_table import (
    create_clickhouse_table,
    create_duckdb_file,
    create_sql_table,
    dataset,
    drop_clickhouse_table,
    drop_sql_table,
)
from tests.services import CLICKHOUSE_URL, MYSQL_URL, POSTGRES_URL

BACKENDS = ("duckdb", "sqlite", "postgresql", "mysql", "clickhouse")
SOURCE_IDS = {"sqlite": 91001, "postgresql": 91002, "mysql": 91003, "clickhouse": 91004}
# The fixture of tests/conftest.py that skips (locally) or fails (CI=true) when a server is down.
SERVICES = {"postgresql": "postgres", "mysql": "mysql", "clickhouse": "clickhouse"}


def engine_url(writable_url: str, kind: str) -> str:
    """The URL a data admin would register: no driver name, as Source.url holds it."""
    return make_url(writable_url).set(drivername=kind).render_as_string(hide_password=False)


def source(kind: str, url: str, *, id_: int | None = None, timeout: int = 10) -> SourceSpec:
    """A foreign source spec."""
    return SourceSpec(
        id=id_ or SOURCE_IDS[kind], kind=kind, url=url, statement_timeout=timeout, stamp="engine"
    )


@pytest.fixture(scope="session")
def duckdb_sales(tmp_path_factory) -> DatasetSpec:
    path = str(tmp_path_factory.mktemp("engine") / "sales.duckdb")
    create_duckdb_file(path)
    yield dataset(file_path=path)
    duckdb_files.close(path)


@pytest.fixture(scope="session")
def sqlite_sales(tmp_path_factory) -> DatasetSpec:
    path = tmp_path_factory.mktemp("engine") / "sales.db"
    url = f"sqlite:///{path}"
    create_sql_table(url)
    spec = dataset(source=source("sqlite", url))
    yield spec
    source_engine(spec.source).dispose()


@pytest.fixture(scope="session")
def postgresql_sales() -> DatasetSpec:
    create_sql_table(POSTGRES_URL)
    spec = dataset(source=source("postgresql", engine_url(POSTGRES_URL, "postgresql")))
    yield spec
    source_engine(spec.source).dispose()
    drop_sql_table(POSTGRES_URL)


@pytest.fixture(scope="session")
def mysql_sales() -> DatasetSpec:
    create_sql_table(MYSQL_URL)
    spec = dataset(source=source("mysql", engine_url(MYSQL_URL, "mysql")))
    yield spec
    source_engine(spec.source).dispose()
    drop_sql_table(MYSQL_URL)


@pytest.fixture(scope="session")
def clickhouse_sales() -> DatasetSpec:
    create_clickhouse_table(CLICKHOUSE_URL)
    spec = dataset(source=source("clickhouse", CLICKHOUSE_URL))
    yield spec
    source_engine(spec.source).dispose()
    drop_clickhouse_table(CLICKHOUSE_URL)


def backend_spec(request: pytest.FixtureRequest, backend: str) -> DatasetSpec:
    """The sales dataset on `backend`, after checking that its server answers."""
    if backend in SERVICES:
        request.getfixturevalue(SERVICES[backend])
    return request.getfixturevalue(f"{backend}_sales")


@pytest.fixture(params=BACKENDS)
def sales(request) -> DatasetSpec:
    """The sales dataset, once per backend."""
    return backend_spec(request, request.param)


@pytest.fixture(params=BACKENDS[1:])
def foreign_sales(request) -> DatasetSpec:
    """The sales dataset, once per foreign SQL backend."""
    return backend_spec(request, request.param)


@pytest.fixture
def duck(duckdb_sales) -> DatasetSpec:
    """The DuckDB copy: the reference every backend's results are compared with."""
    return duckdb_sales
