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
