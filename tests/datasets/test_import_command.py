"""manage.py import_dataset: imports, prints the result, and exits non-zero with a clear message."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from datasets.engine.connections import duckdb_files
from datasets.models import Dataset
from tests.datasets import xlsx_files

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

CSV = "order_id,email,region,amount\n1,a@x.org,EU,1.5\n2,b@x.org,US,2\n3,c@x.org,EU,4\n"


@pytest.fixture(autouse=True)
def _close_files():
    yield
    duckdb_files.close_all()


@pytest.fixture
def sales_csv(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_dataset", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_prints_slug_rows_and_typed_columns(sales_csv):
    out, _ = run(
        str(sales_csv), "--slug", "sales", "--title", "Sales", "--description", "Orders.",
        "--pii", "email=mask",
    )  # fmt: skip

    assert "Imported sales (version 1): 3 rows, primary key order_id" in out
    assert "  order_id  integer" in out
    assert "  email     string  pii=mask" in out
    assert "  amount    number" in out
    dataset = Dataset.objects.get(slug="sales")
    assert (dataset.title, dataset.description) == ("Sales", "Orders.")
    assert dataset.columns.get(name="email").pii == "mask"


def test_replace_and_primary_key_options(sales_csv):
    run(str(sales_csv), "--slug", "sales")
    out, _ = run(str(sales_csv), "--slug", "sales", "--replace", "--primary-key", "email")
    assert "Imported sales (version 2): 3 rows, primary key email" in out


def test_progress_bar_goes_to_stderr(sales_csv, capsys):
    call_command("import_dataset", str(sales_csv), "--slug", "sales", stdout=io.StringIO())
    assert "100%" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--slug", "sales", "--pii", "email"], "Invalid --pii 'email'"),
        (["--slug", "sales", "--pii", "email=blur"], "Invalid --pii 'email=blur'"),
        (["--slug", "sales", "--pii", "mail=mask"], "Unknown column 'mail' in pii"),
        (["--slug", "Sales!"], "Invalid slug 'Sales!'"),
        (["--slug", "sales", "--primary-key", "region"], "has duplicate values"),
    ],
)
def test_errors_are_command_errors(sales_csv, args, expected):
    with pytest.raises(CommandError, match=expected):
        run(str(sales_csv), *args)
    assert not Dataset.objects.filter(slug="sales").exists()


def test_existing_slug_without_replace_is_an_error(sales_csv):
    run(str(sales_csv), "--slug", "sales")
    with pytest.raises(CommandError, match="use --replace"):
        run(str(sales_csv), "--slug", "sales")


def test_the_command_line_exits_non_zero_with_the_reason(tmp_path):
    # A real manage.py process, with its own data directory and SQLite database.
    environment = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "var")}
    environment.pop("DATABASE_URL", None)
    environment.pop("REDIS_URL", None)

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
            timeout=120,
        )

    assert manage("migrate", "--noinput", "-v0").returncode == 0
    nested = tmp_path / "n.json"
    nested.write_text('[{"a": 1, "b": {"c": 2}}]')
    good = tmp_path / "good.csv"
    good.write_text(CSV)
    for path, expected in [
        (tmp_path / "missing.csv", "No such file"),
        (nested, "Column 'b' holds nested objects"),
    ]:
        result = manage("import_dataset", str(path), "--slug", "x")
        assert result.returncode == 1
        assert expected in result.stderr
        assert "Traceback" not in result.stderr
    result = manage("import_dataset", str(good), "--slug", "x")
    assert result.returncode == 0, result.stderr
    assert "Imported x (version 1): 3 rows" in result.stdout


BAD_FILES = [
    ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "Could not read the CSV file: line 3 has 3"),
    ("broken.json", b'[{"a": 1}, {"a": 2', "Could not read the JSON file"),
    ("broken.parquet", b"PAR1 not parquet PAR1", "Could not read the Parquet file"),
    ("zip.xlsx", b"not a zip", "Could not read the XLSX file: not a valid .xlsx workbook"),
    ("xml.xlsx", None, "Could not read the XLSX file: not a valid .xlsx workbook (ParseError"),
    ("huge.xlsx", None, "Could not read the XLSX file: its first sheet declares 20,000,000 rows"),
]


def bad_file(directory: Path, name: str, content: bytes | None) -> Path:
    path = directory / name
    if content is not None:
        path.write_bytes(content)
    elif name == "xml.xlsx":
        rows = xlsx_files.simple_sheet() + "<row><c><v>1</v></row>"
        xlsx_files.write_workbook(path, sheet=xlsx_files.sheet_xml(rows))
    else:
        sheet = xlsx_files.sheet_xml(xlsx_files.simple_sheet(), dimension="A1:B20000000")
        xlsx_files.write_workbook(path, sheet=sheet)
    return path


@pytest.mark.parametrize(("name", "content", "expected"), BAD_FILES, ids=[f[0] for f in BAD_FILES])
def test_a_refused_file_is_one_line_command_error(tmp_path, name, content, expected):
    with pytest.raises(CommandError) as error:
        run(str(bad_file(tmp_path, name, content)), "--slug", "bad")
    message = str(error.value)
    assert message.startswith(expected)
    assert "\n" not in message and len(message) <= 1000
    assert not Dataset.objects.filter(slug="bad").exists()


def test_time_limit_option_bounds_the_import(sales_csv):
    with pytest.raises(CommandError, match="took longer than 1e-06 seconds"):
        run(str(sales_csv), "--slug", "sales", "--time-limit", "0.000001")
    with pytest.raises(CommandError, match="--time-limit must be more than 0 seconds"):
        run(str(sales_csv), "--slug", "sales", "--time-limit", "0")
    assert not Dataset.objects.filter(slug="sales").exists()


def test_refused_xlsx_files_exit_non_zero_with_one_line_and_no_traceback(tmp_path):
    environment = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "var")}
    environment.pop("DATABASE_URL", None)
    environment.pop("REDIS_URL", None)

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
            timeout=120,
        )

    assert manage("migrate", "--noinput", "-v0").returncode == 0
    bomb = xlsx_files.write_workbook(
        tmp_path / "bomb.xlsx",
        sheet=xlsx_files.sheet_xml(xlsx_files.simple_sheet()),
        strings=xlsx_files.shared_strings_bomb(unpacked_mb=200),
    )
    broken = bad_file(tmp_path, "xml.xlsx", None)
    for path, expected in [(bomb, "archive bomb"), (broken, "ParseError: mismatched tag")]:
        result = manage("import_dataset", str(path), "--slug", "x", "-v0")
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert expected in lines[0]
    assert not [p for p in (tmp_path / "var" / "staging").iterdir() if p.is_dir()]
