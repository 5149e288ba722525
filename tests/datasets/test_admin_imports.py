"""Uploads in the admin import in the background: the upload returns at once, a page follows the
import's progress, refused files say why in one line, and an import whose process ended says so."""

from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from datasets.engine.connections import duckdb_files
from datasets.models import Dataset, DatasetImport
from datasets.services import STALE_MESSAGE, dataset_import
from tests.datasets import xlsx_files

# The import runs in another thread, with its own database connection: it sees committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)

ADD_URL = "/admin/datasets/dataset/add/"
CSV = b"order_id,region,customer_email,amount\n1,EU,a@x.org,10.5\n2,US,b@x.org,20\n3,EU,c@x.org,7\n"
IMPORT_URL = re.compile(r"^/admin/datasets/dataset/import/(\d+)/$")


@pytest.fixture(autouse=True)
def _close_files():
    yield
    finish_imports()
    duckdb_files.close_all()


def finish_imports() -> None:
    """Wait for the background imports of this process to end."""
    for thread in threading.enumerate():
        if thread.name.startswith("gateway-import-") and not thread.name.endswith("heartbeat"):
            thread.join(timeout=120)
            assert not thread.is_alive(), f"{thread.name} did not finish"


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def add(client, name: str = "sales.csv", content: bytes = CSV, **fields):
    data = {"slug": "sales", "title": "", "description": "", "primary_key_column": "", **fields}
    return client.post(ADD_URL, {**data, "file": upload(name, content)})


def record_of(response) -> DatasetImport:
    assert response.status_code == 302, response.content.decode()[:2000]
    match = IMPORT_URL.match(response.url)
    assert match, response.url
    return DatasetImport.objects.get(pk=int(match.group(1)))


def change_url(dataset: Dataset) -> str:
    return f"/admin/datasets/dataset/{dataset.pk}/change/"


def staging_areas(settings) -> list[Path]:
    root = Path(settings.GATEWAY_DATA_DIR) / "staging"
    return [path for path in root.iterdir() if path.is_dir()] if root.exists() else []


def inline_scripts(page: str) -> list[str]:
    """<script> tags that would run inline code (a Content-Security-Policy refuses them)."""
    return [
        tag
        for tag in re.findall(r"<script\b[^>]*>", page)
        if "src=" not in tag and "application/json" not in tag
    ]


def test_the_upload_returns_at_once_and_its_page_opens_the_dataset_when_done(
    admin_client, admin_user, settings
):
    response = add(admin_client, title="Sales", description="Orders by region.")

    record = record_of(response)
    assert (record.slug, record.filename, record.replace) == ("sales", "sales.csv", False)
    assert record.created_by == admin_user
    finish_imports()

    record.refresh_from_db()
    assert record.state == DatasetImport.State.DONE
    assert record.progress == 100.0
    dataset = Dataset.objects.get(slug="sales")
    assert record.dataset == dataset
    assert (dataset.title, dataset.description, dataset.row_count) == (
        "Sales",
        "Orders by region.",
        3,
    )
    page = admin_client.get(response.url)
    assert page.status_code == 302
    assert page.url == change_url(dataset)
    shown = admin_client.get(page.url).content.decode()
    assert "Imported 3 rows into &#x27;sales&#x27;" in shown
    assert "b@x.org" in shown  # the preview
    entry = LogEntry.objects.get(object_id=str(dataset.pk))
    assert (entry.user_id, entry.action_flag) == (admin_user.pk, ADDITION)
    assert staging_areas(settings) == []


def test_a_running_import_shows_its_progress_and_a_status_to_poll(admin_client):
    record = DatasetImport.objects.create(
        slug="sales", filename="big.xlsx", state=DatasetImport.State.RUNNING, progress=42.4
    )
    response = admin_client.get(f"/admin/datasets/dataset/import/{record.pk}/")
    page = response.content.decode()

    assert response.status_code == 200
    assert "big.xlsx has been uploaded and is being imported into 'sales'" in page
    assert '<progress max="100" value="42">' in page
    assert f'data-status-url="/admin/datasets/dataset/import/{record.pk}/status/"' in page
    assert "datasets/import_progress.js" in page
    assert '<meta http-equiv="refresh" content="2">' in page  # without JavaScript
    assert inline_scripts(page) == []

    status = admin_client.get(f"/admin/datasets/dataset/import/{record.pk}/status/").json()
    assert status == {"state": "running", "active": True, "progress": 42, "message": ""}


def test_an_import_whose_process_ended_is_marked_failed_on_the_next_look(admin_client):
    record = DatasetImport.objects.create(
        slug="sales", filename="big.xlsx", state=DatasetImport.State.RUNNING, progress=30
    )
    DatasetImport.objects.filter(pk=record.pk).update(
        heartbeat=timezone.now() - dt.timedelta(minutes=5)
    )

    status = admin_client.get(f"/admin/datasets/dataset/import/{record.pk}/status/").json()
    assert (status["state"], status["active"]) == ("failed", False)
    assert status["message"] == STALE_MESSAGE
    page = admin_client.get(f"/admin/datasets/dataset/import/{record.pk}/").content.decode()
    assert "The import of big.xlsx into 'sales' failed: The import stopped" in page
    # The slug is free again: the dead import no longer blocks a new upload.
    assert record_of(add(admin_client)).state in DatasetImport.ACTIVE


def test_a_second_upload_while_one_is_running_is_a_form_error(admin_client):
    DatasetImport.objects.create(
        slug="sales", filename="first.csv", state=DatasetImport.State.RUNNING, progress=10
    )
    response = add(admin_client)
    assert response.status_code == 200
    assert "first.csv is being imported into &#x27;sales&#x27; (10% done)" in (
        response.content.decode()
    )


BOMB = "bomb.xlsx"
BAD_FILES = [
    ("n.json", b'[{"a": 1, "b": {"c": 1}}]', "Column &#x27;b&#x27; holds nested objects"),
    ("r.csv", b"a,b\n1,2\n3,4,5\n", "line 3 has 3"),
    ("j.json", b'[{"a": 1}, {"a": 2', "Could not read the JSON file"),
    ("p.parquet", b"PAR1 not parquet PAR1", "Could not read the Parquet file"),
    ("x.xlsx", b"not a zip", "not a valid .xlsx workbook"),
    ("m.xlsx", None, "not a valid .xlsx workbook (ParseError: mismatched tag"),
    (BOMB, None, "The file looks like an archive bomb and was not read."),
]


def bad_content(name: str, content: bytes | None, directory: Path) -> bytes:
    if content is not None:
        return content
    path = directory / name
    if name == BOMB:
        xlsx_files.write_workbook(
            path,
            sheet=xlsx_files.sheet_xml(xlsx_files.simple_sheet()),
            strings=xlsx_files.shared_strings_bomb(unpacked_mb=200),
        )
    else:
        rows = xlsx_files.simple_sheet() + "<row><c><v>1</v></row>"
        xlsx_files.write_workbook(path, sheet=xlsx_files.sheet_xml(rows))
    return path.read_bytes()


@pytest.mark.parametrize(("name", "content", "expected"), BAD_FILES, ids=[f[0] for f in BAD_FILES])
def test_a_refused_file_fails_its_import_with_one_line(
    admin_client, settings, tmp_path, name, content, expected
):
    record = record_of(add(admin_client, name=name, content=bad_content(name, content, tmp_path)))
    finish_imports()

    record.refresh_from_db()
    assert record.state == DatasetImport.State.FAILED
    assert "\n" not in record.message and len(record.message) <= 1000
    response = admin_client.get(f"/admin/datasets/dataset/import/{record.pk}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "failed: " in page and expected in page
    assert "No dataset was created." in page
    assert "Traceback" not in page
    assert not Dataset.objects.filter(slug="sales").exists()
    assert staging_areas(settings) == []


def test_a_file_of_an_unknown_type_is_refused_on_the_form(admin_client):
    response = add(admin_client, name="notes.pdf", content=b"%PDF")
    assert response.status_code == 200
    assert "Unsupported file type" in response.content.decode()
    assert not DatasetImport.objects.exists()


def test_replace_imports_in_the_background_and_reports_the_new_version(
    admin_client, admin_user, tmp_path
):
    path = tmp_path / "v1.csv"
    path.write_bytes(CSV)
    dataset = dataset_import(path=path, slug="sales")
    replace_url = f"/admin/datasets/dataset/{dataset.pk}/replace/"

    new = b"order_id,region,customer_email,amount\n7,APAC,z@x.org,1\n8,EU,y@x.org,2\n"
    record = record_of(admin_client.post(replace_url, {"file": upload("v2.csv", new)}))
    assert (record.dataset, record.replace) == (dataset, True)
    finish_imports()

    page = admin_client.get(f"/admin/datasets/dataset/import/{record.pk}/")
    assert page.url == change_url(dataset)
    shown = admin_client.get(page.url).content.decode()
    assert "now serves version 2 (v2.csv, 2 rows)" in shown
    assert "z@x.org" in shown and "a@x.org" not in shown
    dataset.refresh_from_db()
    assert (dataset.version, dataset.row_count) == (2, 2)
    entry = LogEntry.objects.get(object_id=str(dataset.pk))
    assert (entry.user_id, entry.action_flag) == (admin_user.pk, CHANGE)


def test_a_broken_replacement_keeps_the_version_and_its_page_says_why(admin_client, tmp_path):
    path = tmp_path / "v1.csv"
    path.write_bytes(CSV)
    dataset = dataset_import(path=path, slug="sales")
    record = record_of(
        admin_client.post(
            f"/admin/datasets/dataset/{dataset.pk}/replace/",
            {"file": upload("v2.json", b'[{"order_id": 1, "x": [1]}]')},
        )
    )
    finish_imports()

    page = admin_client.get(f"/admin/datasets/dataset/import/{record.pk}/").content.decode()
    assert "holds nested objects" in page
    assert "Nothing was changed: 'sales' still serves version 1." in page
    dataset.refresh_from_db()
    assert (dataset.version, dataset.row_count) == (1, 3)
    shown = admin_client.get(change_url(dataset)).content.decode()
    assert "The last upload, v2.json, failed: Column &#x27;x&#x27; holds nested objects" in shown
    assert "a@x.org" in shown


def test_the_dataset_page_shows_a_replacement_in_progress(admin_client, tmp_path):
    path = tmp_path / "v1.csv"
    path.write_bytes(CSV)
    dataset = dataset_import(path=path, slug="sales")
    record = DatasetImport.objects.create(
        slug="sales", dataset=dataset, replace=True, filename="v2.csv", state="running", progress=55
    )
    page = admin_client.get(change_url(dataset)).content.decode()
    assert "Replacing the file with" in page and "v2.csv" in page
    assert f'data-status-url="/admin/datasets/dataset/import/{record.pk}/status/"' in page
    assert f'data-reload-url="/admin/datasets/dataset/import/{record.pk}/"' in page
    assert inline_scripts(page) == []


def test_upload_pages_run_no_inline_script(admin_client, tmp_path):
    path = tmp_path / "v1.csv"
    path.write_bytes(CSV)
    dataset = dataset_import(path=path, slug="sales")
    for url in [ADD_URL, f"/admin/datasets/dataset/{dataset.pk}/replace/"]:
        page = admin_client.get(url).content.decode()
        assert "datasets/upload_progress.js" in page
        assert 'data-form="' in page and "data-max-bytes" in page
        assert inline_scripts(page) == []
        assert " style=" not in page.split('id="content"')[1]


def test_import_pages_need_a_staff_user_who_may_view_datasets(client, admin_client):
    record = DatasetImport.objects.create(slug="sales", filename="a.csv")
    url = f"/admin/datasets/dataset/import/{record.pk}/status/"
    assert client.get(url).status_code == 302  # to the login page
    staff = get_user_model().objects.create_user("staff", password="pw-12345678", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    assert admin_client.get("/admin/datasets/dataset/import/999/").status_code == 404
