"""Importing files into DuckDB datasets: formats, types, statistics, keys, versions and failures."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import duckdb
import openpyxl
import pytest

from datasets import ingest
from datasets.engine.connections import duckdb_files
from datasets.ingest import Budget, IngestError, ingest_file
from datasets.models import Column, Dataset
from datasets.services import DatasetImportError, dataset_import
from tests.datasets import xlsx_files

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _close_files():
    yield
    duckdb_files.close_all()


def write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def read(dataset: Dataset, sql: str = "SELECT * FROM data ORDER BY 1") -> list[tuple]:
    """Rows of the dataset's current file, read through DuckDB as the engine reads them."""
    return duckdb_files.cursor(str(dataset.file_path())).execute(sql).fetchall()


def columns_of(dataset: Dataset) -> dict[str, Column]:
    return {column.physical_name: column for column in dataset.columns.order_by("position")}


def key_constraint(dataset: Dataset) -> list[str]:
    rows = read(
        dataset,
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE table_name = 'data' AND constraint_type = 'PRIMARY KEY'",
    )
    return [name for row in rows for name in row[0]]


def xlsx(directory: Path, name: str, rows: list[list]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    path = directory / name
    workbook.save(path)
    return path


SEMICOLON_CSV = (
    "\ufeffid;Größe;Stadt;Notiz\r\n"
    '1;1.5;Köln;"zwei\r\nZeilen"\r\n'
    '2;2.25;München;"mit ""Anführung"" und ;"\r\n'
    "3;3;Köln;\r\n"
).encode()


def test_semicolon_csv_with_bom_quoted_newlines_and_non_ascii_header(tmp_path):
    dataset = dataset_import(path=write(tmp_path, "städte.csv", SEMICOLON_CSV), slug="cities")

    columns = columns_of(dataset)
    assert list(columns) == ["id", "Größe", "Stadt", "Notiz"]
    assert [c.name for c in columns.values()] == ["id", "grosse", "stadt", "notiz"]
    assert [c.type for c in columns.values()] == ["integer", "number", "string", "string"]
    assert dataset.row_count == 3
    assert dataset.table == "data"
    assert dataset.primary_key == "id"
    assert dataset.version == 1
    assert dataset.original_filename == "städte.csv"
    assert columns["Stadt"].enum == ["Köln", "München"]
    assert (columns["Größe"].min_value, columns["Größe"].max_value) == (1.5, 3.0)
    assert read(dataset)[0] == (1, 1.5, "Köln", "zwei\r\nZeilen")
    assert read(dataset)[1][3] == 'mit "Anführung" und ;'
    assert key_constraint(dataset) == ["id"]


def test_tsv_with_dates_booleans_and_an_empty_cell_gets_a_row_id(tmp_path):
    content = "name\tjoined\tactive\tscore\nAda\t2024-01-05\ttrue\t10\nBen\t2024-02-10\tfalse\t\n"
    dataset = dataset_import(path=write(tmp_path, "people.tsv", content), slug="people")

    columns = columns_of(dataset)
    assert list(columns) == ["row_id", "name", "joined", "active", "score"]
    assert [c.type for c in columns.values()] == ["integer", "string", "date", "boolean", "integer"]
    assert dataset.primary_key == "row_id"
    assert columns["active"].enum == [False, True]
    assert (columns["joined"].min_value, columns["joined"].max_value) == (
        "2024-01-05",
        "2024-02-10",
    )
    assert read(dataset, "SELECT row_id, name FROM data ORDER BY row_id") == [
        (1, "Ada"),
        (2, "Ben"),
    ]
    assert key_constraint(dataset) == ["row_id"]


def test_xlsx_with_a_date_column(tmp_path):
    path = xlsx(
        tmp_path,
        "orders.xlsx",
        [
            ["Order ID", "Order Date", "Amount", "Paid at", "Note"],
            [10, dt.date(2024, 4, 1), 12.5, dt.datetime(2024, 4, 1, 9, 30), "first"],
            [11, dt.date(2024, 6, 30), 3, dt.datetime(2024, 7, 1, 18, 0), None],
            [12, dt.date(2024, 5, 2), 7, dt.datetime(2024, 5, 2, 8, 15, 5), 'x, "y"\nz'],
        ],
    )
    dataset = dataset_import(path=path, slug="orders")

    columns = columns_of(dataset)
    assert [c.name for c in columns.values()] == [
        "order_id",
        "order_date",
        "amount",
        "paid_at",
        "note",
    ]
    assert [c.type for c in columns.values()] == ["integer", "date", "number", "datetime", "string"]
    assert dataset.row_count == 3
    assert dataset.primary_key == "order_id"
    assert (columns["Order Date"].min_value, columns["Order Date"].max_value) == (
        "2024-04-01",
        "2024-06-30",
    )
    assert columns["Paid at"].max_value == "2024-07-01T18:00:00"
    assert read(dataset)[2][4] == 'x, "y"\nz'
    assert read(dataset)[1][1] == dt.date(2024, 6, 30)


def test_json_array_of_objects(tmp_path):
    records = [
        {"id": 1, "name": "a", "at": "2024-01-01 10:00:00", "ok": True, "amount": 1.5},
        {"id": 2, "name": "b", "at": "2024-02-01 11:30:00", "ok": False, "amount": 2},
    ]
    dataset = dataset_import(path=write(tmp_path, "x.json", json.dumps(records)), slug="things")

    columns = columns_of(dataset)
    assert [c.type for c in columns.values()] == [
        "integer",
        "string",
        "datetime",
        "boolean",
        "number",
    ]
    assert dataset.row_count == 2
    assert dataset.primary_key == "id"
    assert columns["at"].min_value == "2024-01-01T10:00:00"
    assert columns["name"].enum == ["a", "b"]


def test_ndjson(tmp_path):
    lines = "\n".join(
        json.dumps({"label": f"X{i}", "qty": i % 3, "price": i / 4}) for i in range(1, 8)
    )
    dataset = dataset_import(path=write(tmp_path, "lines.ndjson", lines + "\n"), slug="lines")

    columns = columns_of(dataset)
    assert [c.type for c in columns.values()] == ["integer", "string", "integer", "number"]
    assert dataset.row_count == 7
    assert dataset.primary_key == "row_id"
    assert columns["qty"].enum == [0, 1, 2]
    assert (columns["price"].min_value, columns["price"].max_value) == (0.25, 1.75)


def test_parquet_with_decimal_and_timestamp(tmp_path):
    path = tmp_path / "facts.parquet"
    duckdb.sql(
        "COPY (SELECT i AS fact_id, (i * 1.25)::DECIMAL(10, 2) AS amount, "
        "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (i) HOUR AS seen, i % 2 = 0 AS even "
        f"FROM range(1, 101) t(i)) TO '{path}' (FORMAT parquet)"
    )
    dataset = dataset_import(path=path, slug="facts")

    columns = columns_of(dataset)
    assert [c.type for c in columns.values()] == ["integer", "number", "datetime", "boolean"]
    assert dataset.row_count == 100
    assert dataset.primary_key == "fact_id"
    assert (columns["amount"].min_value, columns["amount"].max_value) == (1.25, 125.0)
    assert columns["seen"].min_value == "2024-01-01T01:00:00"
    assert columns["fact_id"].enum is None  # the key's values are not an enum


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("nested.json", '[{"a": 1, "b": {"x": 1}}]', "column 'b' holds nested objects"),
        ("list.ndjson", '{"a": 1, "tags": [1, 2]}\n', "column 'tags' holds nested objects"),
        ("mixed.json", '[{"a": 1, "m": 1}, {"a": 2, "m": {"q": 1}}]', "column 'm' holds nested"),
    ],
)
def test_nested_values_are_rejected_naming_the_column(tmp_path, name, content, expected):
    with pytest.raises(DatasetImportError) as error:
        dataset_import(path=write(tmp_path, name, content), slug="nested")
    assert expected in str(error.value).lower()
    assert "flatten" in str(error.value)
    assert not Dataset.objects.filter(slug="nested").exists()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("ragged.csv", "a,b\n1,2\n3,4\n5,6,7\n8,9\n", "line 4 has 3"),
        ("broken.json", '[{"a": 1}, {"a": 2', "Could not read the JSON file"),
        ("empty.csv", "a,b\n", "no rows"),
        ("latin1.csv", "id,city\n1,Köln\n".encode("latin-1"), "Save it as UTF-8"),
        ("notes.docx", "hello", "Unsupported file type '.docx'"),
        ("sheet.xlsx", "not a zip", "not a valid .xlsx workbook"),
        ("bytes.parquet", "not parquet", "Could not read the Parquet file"),
    ],
)
def test_unreadable_files_give_a_clear_error(tmp_path, name, content, expected):
    with pytest.raises(DatasetImportError) as error:
        dataset_import(path=write(tmp_path, name, content), slug="broken")
    assert expected in str(error.value)
    assert not Dataset.objects.filter(slug="broken").exists()


@pytest.mark.parametrize(
    ("late", "expected_type", "expected_value"),
    [("unknown", "string", "unknown"), ("n/a", "integer", None)],
)
def test_a_value_after_the_sniffed_rows_widens_the_column_type(
    tmp_path, late, expected_type, expected_value
):
    # DuckDB sniffs the first 20480 rows; a value further down must not fail the import, and a
    # missing-value marker there must not turn a number column into text.
    content = "id,amount\n" + "".join(f"{i},{i}\n" for i in range(1, 25001)) + f"25001,{late}\n"
    dataset = dataset_import(path=write(tmp_path, "late.csv", content), slug="late")
    assert columns_of(dataset)["amount"].type == expected_type
    assert dataset.row_count == 25001
    assert read(dataset, "SELECT amount FROM data WHERE id = 25001") == [(expected_value,)]


def test_missing_value_markers_are_null_in_typed_columns_and_text_in_text_columns(tmp_path):
    # As R writes a CSV: "NA" for a missing number, date or boolean; "NA" is also Namibia.
    content = (
        "country,gdp,joined,active,note\n"
        "NA,1.5,03/02/2024,true,NA\n"
        "FR,NA,NA,NA,\n"
        "DE,N/A,04/02/2024,false,null\n"
        "IT,,#N/A,,x\n"
    )
    dataset = dataset_import(path=write(tmp_path, "countries.csv", content), slug="countries")

    columns = columns_of(dataset)
    assert [columns[name].type for name in ("country", "gdp", "joined", "active", "note")] == [
        "string",
        "number",
        "date",
        "boolean",
        "string",
    ]
    assert read(dataset, "SELECT country, gdp, joined, active, note FROM data ORDER BY row_id") == [
        ("NA", 1.5, dt.date(2024, 2, 3), True, "NA"),
        ("FR", None, None, None, None),
        ("DE", None, dt.date(2024, 2, 4), False, "null"),
        ("IT", None, None, None, "x"),
    ]
    assert columns["gdp"].null_count == 3
    assert (columns["joined"].min_value, columns["joined"].max_value) == (
        "2024-02-03",
        "2024-02-04",
    )
    assert "NA" in columns["country"].enum


def test_day_first_dates_with_markers_and_a_late_word_stay_text_and_lose_nothing(tmp_path):
    days = "".join(f"{i},{'NA' if i % 2 else '03/02/2024'}\n" for i in range(1, 21000))
    content = "id,day\n" + days + "21000,soon\n"
    dataset = dataset_import(path=write(tmp_path, "days.csv", content), slug="days")
    assert columns_of(dataset)["day"].type == "string"
    assert read(dataset, "SELECT day, count(*) FROM data GROUP BY day ORDER BY day") == [
        ("03/02/2024", 10499),
        ("NA", 10500),
        ("soon", 1),
    ]


def test_missing_value_markers_in_an_xlsx_keep_the_column_typed(tmp_path):
    path = xlsx(
        tmp_path,
        "countries.xlsx",
        [
            ["country", "gdp", "joined"],
            ["NA", 12.5, dt.datetime(2024, 1, 5)],
            ["FR", "NA", "N/A"],
            ["DE", 3, dt.datetime(2024, 2, 5)],
        ],
    )
    dataset = dataset_import(path=path, slug="countries")

    columns = columns_of(dataset)
    assert [columns[name].type for name in ("country", "gdp", "joined")] == [
        "string",
        "number",
        "date",
    ]
    assert read(dataset, "SELECT country, gdp, joined FROM data ORDER BY row_id") == [
        ("NA", 12.5, dt.date(2024, 1, 5)),
        ("FR", None, None),
        ("DE", 3.0, dt.date(2024, 2, 5)),
    ]


def test_reserved_api_names_are_suffixed(tmp_path):
    content = "limit,offset,search,Group By,name\n1,2,3,4,x\n"
    dataset = dataset_import(path=write(tmp_path, "r.csv", content), slug="reserved")
    names = [c.name for c in columns_of(dataset).values() if c.physical_name != "row_id"]
    assert names == ["limit_", "offset_", "search_", "group_by_", "name"]
    assert dataset.primary_key == "row_id"  # unique by chance, not named like a key


def test_a_row_id_does_not_collide_with_a_column_of_that_name(tmp_path):
    dataset = dataset_import(path=write(tmp_path, "k.csv", "row_id,x\n1,a\n1,b\n"), slug="keyed")
    assert dataset.primary_key == "row_id_2"
    assert read(dataset, "SELECT row_id_2, x FROM data ORDER BY 1") == [(1, "a"), (2, "b")]


def test_declared_primary_key_by_file_or_api_name(tmp_path):
    path = write(tmp_path, "k.csv", "Code Name,n\nA,1\nB,1\n")
    dataset = dataset_import(path=path, slug="by_api", primary_key="code_name")
    assert dataset.primary_key == "code_name"
    assert key_constraint(dataset) == ["Code Name"]
    dataset = dataset_import(path=path, slug="by_file", primary_key="Code Name")
    assert dataset.primary_key == "code_name"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("n", "Primary key column 'n' has duplicate values (for example 1)"),
        ("code", "Primary key column 'code' is empty in 1 rows"),
        ("nope", "Primary key column 'nope' is not in the file. Columns: code, n, x"),
        ("x", "Primary key column 'x' is a number column"),
    ],
)
def test_declared_primary_key_must_exist_be_unique_and_not_null(tmp_path, key, expected):
    path = write(tmp_path, "k.csv", "code,n,x\nA,1,1.5\n,1,2.5\n")
    with pytest.raises(DatasetImportError) as error:
        dataset_import(path=path, slug="keyed", primary_key=key)
    assert expected in str(error.value)
    assert not Dataset.objects.filter(slug="keyed").exists()
    assert not list((tmp_path / "data" / "datasets" / "keyed").glob("v*"))


def test_column_flags_default_and_pii_protects_values(tmp_path):
    content = "id,email,city,amount\n1,a@x.org,Paris,1\n2,b@x.org,Rome,2\n"
    dataset = dataset_import(
        path=write(tmp_path, "c.csv", content),
        slug="customers",
        pii={"email": "mask", "city": "hide"},
    )
    columns = columns_of(dataset)
    assert all(c.exposed and c.filterable and c.sortable for c in columns.values())
    assert [c.searchable for c in columns.values()] == [False, True, True, False]
    assert [c.pii for c in columns.values()] == ["none", "mask", "hide", "none"]
    # Distinct values of a protected column would leak it through the schema.
    assert columns["email"].enum is None
    assert columns["city"].enum is None
    assert columns["amount"].enum == [1, 2]


def test_pii_of_an_unknown_column_is_an_error(tmp_path):
    with pytest.raises(
        DatasetImportError, match="Unknown column 'mail' in pii. Did you mean 'email'"
    ):
        dataset_import(
            path=write(tmp_path, "c.csv", "id,email\n1,a@x.org\n"), slug="c", pii={"mail": "mask"}
        )
    assert not Dataset.objects.filter(slug="c").exists()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"slug": "Bad Slug"}, "Invalid slug 'Bad Slug'"),
        ({"slug": "ok", "description": "x" * 301}, "at most 300"),
        ({"slug": "ok", "pii": {"id": "blur"}}, "Unknown pii mode 'blur'"),
    ],
)
def test_invalid_arguments_are_refused(tmp_path, arguments, expected):
    with pytest.raises(DatasetImportError, match=expected):
        dataset_import(path=write(tmp_path, "a.csv", "id\n1\n"), **arguments)


def test_a_file_over_the_upload_limit_is_refused(tmp_path, settings):
    settings.GATEWAY_UPLOAD_MAX_MB = 1
    path = write(tmp_path, "big.csv", "id,text\n" + "1," + "x" * (1024 * 1024) + "\n")
    with pytest.raises(DatasetImportError, match="upload limit is 1 MB"):
        dataset_import(path=path, slug="big")


def test_an_existing_slug_needs_replace(tmp_path):
    path = write(tmp_path, "a.csv", "id\n1\n")
    dataset_import(path=path, slug="once")
    with pytest.raises(DatasetImportError, match="already exists: use --replace"):
        dataset_import(path=path, slug="once")


def test_replace_keeps_admin_settings_of_unchanged_columns_and_swaps_versions(tmp_path):
    first = write(tmp_path, "v1.csv", "id,email,region\n1,a@x.org,EU\n2,b@x.org,US\n")
    dataset = dataset_import(path=first, slug="sales", description="Orders.")
    email = dataset.columns.get(physical_name="email")
    email.name, email.description, email.pii, email.sortable = "mail", "Buyer", "mask", False
    email.save()

    second = write(
        tmp_path, "v2.csv", "id,email,channel\n1,a@x.org,web\n2,b@x.org,shop\n3,c@x.org,web\n"
    )
    dataset = dataset_import(path=second, slug="sales", replace=True)

    columns = columns_of(dataset)
    assert list(columns) == ["id", "email", "channel"]
    kept = columns["email"]
    assert (kept.name, kept.description, kept.pii, kept.sortable) == (
        "mail",
        "Buyer",
        "mask",
        False,
    )
    assert kept.enum is None
    assert columns["channel"].enum == ["shop", "web"]
    assert dataset.version == 2
    assert dataset.row_count == 3
    assert dataset.description == "Orders."
    assert dataset.original_filename == "v2.csv"
    assert read(dataset, "SELECT count(*) FROM data") == [(3,)]

    # The previous version stays for readers that still hold it; older ones go.
    directory = dataset.directory
    assert len(dataset.file_stamp) == 16
    assert sorted(p.name for p in directory.glob("v*")) == [
        f"v1-{dataset.file_stamp}.duckdb",
        f"v2-{dataset.file_stamp}.duckdb",
    ]
    dataset = dataset_import(path=first, slug="sales", replace=True)
    assert dataset.version == 3
    assert sorted(p.name for p in directory.glob("v*")) == [
        f"v2-{dataset.file_stamp}.duckdb",
        f"v3-{dataset.file_stamp}.duckdb",
    ]


def test_replace_keeps_the_previous_key_when_still_unique(tmp_path):
    dataset = dataset_import(
        path=write(tmp_path, "a.csv", "code,id\nA,1\nB,2\n"), slug="codes", primary_key="code"
    )
    dataset = dataset_import(
        path=write(tmp_path, "b.csv", "code,id\nC,1\nD,2\n"), slug="codes", replace=True
    )
    assert dataset.primary_key == "code"


def _snapshot(slug: str) -> tuple:
    dataset = Dataset.objects.get(slug=slug)
    columns = list(
        dataset.columns.order_by("position").values_list("physical_name", "name", "type")
    )
    return (dataset.version, dataset.row_count, dataset.primary_key, dataset.updated, columns)


@pytest.mark.parametrize(
    ("name", "content", "arguments"),
    [
        ("broken.csv", "a,b\n1,2\n3,4,5\n", {}),
        ("nested.json", '[{"id": 3, "b": {"x": 1}}]', {}),
        # Fails after the new file is written, while saving the catalog.
        ("fine.csv", "id,region\n5,EU\n", {"pii": {"nope": "mask"}}),
        ("fine.csv", "id,region\n5,EU\n5,US\n", {"primary_key": "id"}),
    ],
)
def test_a_failed_replacement_leaves_the_previous_version_serving(
    tmp_path, name, content, arguments
):
    dataset = dataset_import(
        path=write(tmp_path, "good.csv", "id,region\n1,EU\n2,US\n"), slug="stable"
    )
    before = _snapshot("stable")

    with pytest.raises(DatasetImportError):
        dataset_import(
            path=write(tmp_path, name, content), slug="stable", replace=True, **arguments
        )

    assert _snapshot("stable") == before
    dataset = Dataset.objects.get(slug="stable")
    assert read(dataset, "SELECT id, region FROM data ORDER BY id") == [(1, "EU"), (2, "US")]
    assert sorted(p.name for p in dataset.directory.iterdir() if p.name.startswith("v")) == [
        f"v1-{dataset.file_stamp}.duckdb"
    ]


def test_a_dataset_of_a_source_cannot_take_a_file(tmp_path):
    from datasets.models import Source

    source = Source.objects.create(name="db", kind="sqlite", url=f"sqlite:///{tmp_path}/x.db")
    Dataset.objects.create(slug="remote", title="Remote", source=source, table="t")
    with pytest.raises(DatasetImportError, match="table 't' of source db"):
        dataset_import(path=write(tmp_path, "a.csv", "id\n1\n"), slug="remote", replace=True)


def test_progress_is_reported_up_to_100(tmp_path):
    seen: list[float] = []
    dataset_import(
        path=write(tmp_path, "a.csv", "id\n1\n2\n"), slug="progress", progress=seen.append
    )
    assert seen[0] == 0.0
    assert seen[-1] == 100.0
    assert seen == sorted(seen)


def test_ingest_refuses_to_overwrite_an_existing_file(tmp_path):
    target = tmp_path / "v1.duckdb"
    target.write_bytes(b"")
    with pytest.raises(IngestError, match="already exists"):
        ingest_file(path=write(tmp_path, "a.csv", "id\n1\n"), target=target)
    assert target.exists()


# Budgets, archive bombs and refusals -------------------------------------------------------------


def staging_leftovers(settings) -> list[Path]:
    root = Path(settings.GATEWAY_DATA_DIR) / "staging"
    return sorted(path for path in root.iterdir() if path.is_dir()) if root.exists() else []


def no_stray_files(settings) -> bool:
    """Nothing but the datasets' version files (and the staging lock) under the data directory."""
    data = Path(settings.GATEWAY_DATA_DIR)
    stray = [
        path
        for path in data.rglob("*")
        if path.is_file()
        and path.name != ".sweep"
        and not (path.parent.parent.name == "datasets" and path.name.endswith(".duckdb"))
        and path.suffix not in {".sqlite3", ".key"}
        and "secret" not in path.name
    ]
    return not stray and not staging_leftovers(settings)


def test_an_xlsx_whose_shared_strings_inflate_to_200_mb_is_refused_unread(tmp_path, settings):
    bomb = xlsx_files.write_workbook(
        tmp_path / "bomb.xlsx",
        sheet=xlsx_files.sheet_xml(xlsx_files.simple_sheet()),
        strings=xlsx_files.shared_strings_bomb(unpacked_mb=200),
    )
    assert bomb.stat().st_size < 1024 * 1024  # a few hundred KB on disk

    tracemalloc.start()
    try:
        with pytest.raises(DatasetImportError) as error:
            dataset_import(path=bomb, slug="bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    message = str(error.value)
    assert message.startswith("Could not read the XLSX file: its part 'xl/sharedStrings.xml'")
    assert "unpacks from 202 KB to 200 MB" in message
    assert "archive bomb" in message
    assert "\n" not in message
    # Refused from the archive's directory: neither the time nor the memory budget was needed.
    assert "time limit" not in message and "memory limit" not in message
    assert peak < 20 * 1024 * 1024
    assert not Dataset.objects.filter(slug="bomb").exists()
    assert no_stray_files(settings)


def test_shared_strings_over_their_size_limit_are_refused(tmp_path, monkeypatch):
    # Incompressible text passes the ratio check; its unpacked size alone is over the limit.
    monkeypatch.setattr(ingest, "XLSX_SHARED_STRINGS_MAX_BYTES", 4096)
    path = xlsx_files.write_workbook(
        tmp_path / "strings.xlsx",
        sheet=xlsx_files.sheet_xml(xlsx_files.simple_sheet()),
        strings=xlsx_files.strings_xml(f"text {n}" for n in range(1000)),
    )
    with pytest.raises(DatasetImportError, match=r"its shared strings 'xl/sharedStrings.xml' "
                       r"unpacks to \d+ KB, over the limit of 4 KB"):  # fmt: skip
        dataset_import(path=path, slug="strings")


def test_shared_strings_are_found_by_content_type_whatever_their_part_name(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "XLSX_SHARED_STRINGS_MAX_BYTES", 4096)
    path = xlsx_files.write_workbook(
        tmp_path / "renamed.xlsx",
        sheet=xlsx_files.sheet_xml(xlsx_files.simple_sheet()),
        strings=xlsx_files.strings_xml(f"text {n}" for n in range(1000)),
        strings_part="xl/media/image1.png",
    )
    with pytest.raises(DatasetImportError, match="its shared strings 'xl/media/image1.png'"):
        dataset_import(path=path, slug="renamed")


@pytest.mark.parametrize(
    ("rows", "dimension", "expected"),
    [
        (
            xlsx_files.simple_sheet(),
            "A1:B20000000",
            "its first sheet declares 20,000,000 rows and 2 columns; a sheet has at most "
            "1,048,576 rows and 16,384 columns.",
        ),
        (
            xlsx_files.simple_sheet() + '<row r="20000000"><c r="A20000000"><v>1</v></c></row>',
            None,
            "its first sheet has more than 1,048,576 rows, the most a sheet can have.",
        ),
        (
            xlsx_files.simple_sheet() + '<row r="5">' + "<c><v>1</v></c>" * 16_385 + "</row>",
            None,
            "row 5 of its first sheet has more than 16,384 cells, the most a sheet can have.",
        ),
    ],
    ids=["declared-rows", "row-number", "row-width"],
)
def test_an_xlsx_sheet_beyond_excel_limits_is_refused_before_its_rows_are_read(
    tmp_path, rows, dimension, expected
):
    path = xlsx_files.write_workbook(
        tmp_path / "huge.xlsx", sheet=xlsx_files.sheet_xml(rows, dimension)
    )
    seen: list[float] = []
    with pytest.raises(DatasetImportError) as error:
        dataset_import(path=path, slug="huge", progress=seen.append)
    assert str(error.value).startswith("Could not read the XLSX file: " + expected)
    # Refused by the scan that precedes the rows (0-10%), not after reading them (10-80%).
    assert max(seen) <= 10.0


@pytest.mark.parametrize(
    ("sheet", "strings", "expected"),
    [
        ("<row><c><v>1</v></row>", None, "mismatched tag"),
        (None, "<sst><si><t>a</si>", "mismatched tag"),
        ('<row r="9"><c r="A9" t="s"><v>99</v></c></row>', None, "IndexError"),
        ('<row r="9"><c r="A9"><v>abc</v></c></row>', None, "invalid literal"),
        ('<row r="9"><c r="ZZZZ9"><v>1</v></c></row>', None, "not a valid column name"),
    ],
    ids=["sheet-xml", "strings-xml", "string-index", "number", "cell-reference"],
)
def test_broken_xlsx_xml_is_one_clear_message(tmp_path, sheet, strings, expected):
    rows = xlsx_files.simple_sheet() + (sheet or "")
    path = xlsx_files.write_workbook(
        tmp_path / "broken.xlsx", sheet=xlsx_files.sheet_xml(rows), strings=strings or ""
    )
    with pytest.raises(DatasetImportError) as error:
        dataset_import(path=path, slug="broken")
    message = str(error.value)
    assert message.startswith("Could not read the XLSX file: ")
    assert expected in message
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("name", ["a.csv", "a.xlsx"])
def test_an_import_past_its_time_budget_is_refused(tmp_path, settings, name):
    if name.endswith(".xlsx"):
        path = xlsx(tmp_path, name, [["id", "name"], [1, "a"], [2, "b"]])
    else:
        path = write(tmp_path, name, "id,name\n1,a\n2,b\n")
    with pytest.raises(DatasetImportError, match="took longer than 0 seconds, the time limit"):
        dataset_import(path=path, slug="slow", budget=Budget(seconds=0))
    assert not Dataset.objects.filter(slug="slow").exists()
    assert no_stray_files(settings)


def test_a_statement_running_past_the_deadline_is_interrupted(tmp_path, settings):
    # The deadline passes while DuckDB reads the file: the watcher interrupts the statement.
    # Large enough that even a quiet machine reads it for several times the limit.
    content = "id,text\n" + "".join(f"{i},{'x' * 50}{i}\n" for i in range(1_000_000))
    path = write(tmp_path, "long.csv", content)
    budget = Budget(seconds=0.1)
    with pytest.raises(DatasetImportError, match="took longer than 0.1 seconds"):
        dataset_import(path=path, slug="long", budget=budget)
    assert no_stray_files(settings)


def test_an_import_past_its_memory_budget_is_refused(tmp_path, settings):
    path = write(tmp_path, "a.csv", "id,n\n" + "".join(f"{i},{i}\n" for i in range(50_000)))
    with pytest.raises(DatasetImportError) as error:
        dataset_import(path=path, slug="big", budget=Budget(memory="1MB"))
    assert str(error.value) == (
        "The import needed more than 1MB of working memory, the memory limit of one import: "
        "split the file into smaller ones."
    )
    assert no_stray_files(settings)


LONG = "x" * 5000


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "latin1.csv",
            b"id,city\n"
            + b"".join(b"%d,x\n" % i for i in range(30_000))
            + b"1,K\xf6ln"
            + LONG.encode()
            + b"\n",
            "Save it as UTF-8",
        ),
        ("field.csv", b"a,b\n1,2\n3," + LONG.encode() * 40 + b",4\n", "cannot be split"),
        ("n.json", ('[{"a": 1, "' + LONG + '": {"c": 1}}]').encode(), "holds nested objects"),
        ("k.parquet", b"PAR1" + LONG.encode() + b"PAR1", "Could not read the Parquet file"),
    ],
    ids=["csv-line", "csv-field", "json-name", "parquet"],
)
def test_a_refusal_quotes_at_most_200_characters_of_one_line(tmp_path, name, content, expected):
    with pytest.raises(DatasetImportError) as error:
        dataset_import(path=write(tmp_path, name, content), slug="quoted")
    message = str(error.value)
    assert expected in message
    assert "\n" not in message
    assert len(message) <= 1000
    assert "x" * 201 not in message


def test_refusal_keeps_one_line_and_shortens_long_quotes():
    text = "Column 'b' is bad\nOriginal Line: " + "y" * 300 + "\n" + f'value "{"z" * 300}" here'
    shortened = ingest.refusal(text)
    assert "\n" not in shortened
    assert "y" * 201 not in shortened and "z" * 201 not in shortened
    assert shortened.startswith("Column 'b' is bad Original Line: ")
    assert shortened.endswith('…" here')
    assert len(ingest.refusal("w " * 5000)) == 1000


def test_a_failed_import_leaves_no_staging_file(tmp_path, settings):
    for name, content in [("r.csv", "a,b\n1,2\n3,4,5\n"), ("n.xlsx", "not a zip")]:
        with pytest.raises(DatasetImportError):
            dataset_import(path=write(tmp_path, name, content), slug="failing")
    dataset_import(path=write(tmp_path, "ok.csv", "id\n1\n"), slug="fine")
    assert no_stray_files(settings)


KILLED_IMPORT = """
import os, sys, time
import django
django.setup()
from datasets.staging import StagingArea
area = StagingArea.create()
(area.path / "v1.duckdb").write_bytes(b"half written")
(area.path / "rows.csv").write_text("id\\n1\\n")
print(area.path, flush=True)
time.sleep(120)
"""


def test_the_staging_files_of_a_killed_import_are_removed_by_the_next_import(tmp_path, settings):
    environment = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(settings.GATEWAY_DATA_DIR),
        "DJANGO_SETTINGS_MODULE": "gatewaysite.settings",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_IMPORT],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        area = Path(process.stdout.readline().strip())
        assert (area / "v1.duckdb").exists()
        # While the import runs, another import leaves its area alone.
        dataset_import(path=write(tmp_path, "a.csv", "id\n1\n"), slug="first")
        assert (area / "v1.duckdb").exists()
    finally:
        process.kill()
        process.wait(timeout=30)
        process.stdout.close()
    assert area.exists()  # killed: it could not clean up

    dataset_import(path=write(tmp_path, "b.csv", "id\n1\n"), slug="second")
    assert not area.exists()
    assert staging_leftovers(settings) == []
