"""Delete means deleted: a deleted dataset's files leave every host once the deletion commits.

Every test works on real files under the data directory, with a dataset holding a masked column
(`email`) and a hidden one (`secret`), whose values the version file holds as imported, and
whose rows by key the process keeps unmasked once read (datasets/engine/result_cache.py).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from datasets import files
from datasets.engine.connections import duckdb_files
from datasets.engine.result_cache import result_cache
from datasets.models import Column, Dataset
from datasets.staging import LOCK_NAME, StagingArea, staging_root

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"sesame-4f1c9a"
PEOPLE = (
    "id,name,email,secret\n"
    f"1,Ada,ada@example.org,{SECRET.decode()}-1\n"
    f"2,Grace,grace@example.org,{SECRET.decode()}-2\n"
)
NEW_PEOPLE = "id,name,email,secret\n1,Edsger,edsger@example.org,other-1\n"


@pytest.fixture(autouse=True)
def _close_files():
    yield
    duckdb_files.close_all()
    result_cache.clear()


@pytest.fixture
def embedded_cache(settings):
    """Generations in the data directory (the embedded default), whatever the suite runs on."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def api():
    from keys.services import api_key_issue

    raw_key = api_key_issue(name="reader", all_datasets=True).raw_key
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


def import_people(tmp_path: Path, content: str = PEOPLE, *options: str) -> Dataset:
    """Import `people` with the command."""
    path = tmp_path / "people.csv"
    path.write_text(content, encoding="utf-8")
    call_command(
        "import_dataset", str(path), "--slug", "people",
        "--pii", "email=mask", "--pii", "secret=hide", *options,
        stdout=io.StringIO(), stderr=io.StringIO(), verbosity=0,
    )  # fmt: skip
    return Dataset.objects.get(slug="people")


def import_other(tmp_path: Path) -> Dataset:
    path = tmp_path / "other.csv"
    path.write_text("id,city\n1,Lyon\n2,Oslo\n", encoding="utf-8")
    call_command("import_dataset", str(path), "--slug", "other", stdout=io.StringIO(), verbosity=0)
    return Dataset.objects.get(slug="other")


def read_people(api: Client) -> None:
    """Serve the dataset: a page of rows, and a row by key (kept by the process once read)."""
    rows = api.get("/api/v1/datasets/people/rows/")
    assert rows.status_code == 200, rows.content
    assert [row["name"] for row in rows.json()["results"]] == ["Ada", "Grace"]
    row = api.get("/api/v1/datasets/people/rows/1/").json()
    assert row == {"id": 1, "name": "Ada", "email": "a***@example.org"}


def files_holding(data_dir: Path, value: bytes) -> list[Path]:
    """Every file under the data directory whose bytes contain `value`."""
    return [path for path in data_dir.rglob("*") if path.is_file() and value in path.read_bytes()]


def open_files_under(directory: Path) -> list[str]:
    """The files under `directory` this process holds open, deleted or not."""
    held = []
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:
            continue
        if target.startswith(f"{directory}/"):
            held.append(target)
    return held


def delete_with_orm(dataset: Dataset, client: Client) -> None:
    dataset.delete()


def delete_with_queryset(dataset: Dataset, client: Client) -> None:
    Dataset.objects.filter(slug=dataset.slug).delete()


def delete_in_admin(dataset: Dataset, client: Client) -> None:
    url = reverse("admin:datasets_dataset_delete", args=[dataset.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302


def delete_in_admin_bulk(dataset: Dataset, client: Client) -> None:
    response = client.post(
        reverse("admin:datasets_dataset_changelist"),
        {"action": "delete_selected", "_selected_action": [dataset.pk], "post": "yes"},
    )
    assert response.status_code == 302


def delete_with_command(dataset: Dataset, client: Client) -> None:
    out = io.StringIO()
    call_command("delete_dataset", dataset.slug, "--yes", stdout=out)
    assert "Deleted people" in out.getvalue()


@pytest.mark.parametrize(
    "delete",
    [
        delete_with_orm,
        delete_with_queryset,
        delete_in_admin,
        delete_in_admin_bulk,
        delete_with_command,
    ],
    ids=["orm", "queryset", "admin", "admin-bulk-action", "command"],
)
def test_a_deleted_dataset_leaves_no_file_and_no_open_handle(
    delete, tmp_path, settings, api, admin_client
):
    data_dir = Path(settings.GATEWAY_DATA_DIR)
    other = import_other(tmp_path)
    people = import_people(tmp_path)
    read_people(api)
    directory = people.directory
    # What there is to remove: the version file, this process's connections to it, and the rows
    # by key it keeps (the masked values unmasked).
    assert files_holding(data_dir, SECRET)
    assert open_files_under(directory)
    assert str(people.file_path()) in result_cache.files()

    delete(people, admin_client)

    assert not directory.exists()
    assert files_holding(data_dir, SECRET) == []
    assert open_files_under(directory) == []
    assert str(people.file_path()) not in result_cache.files()
    assert api.get("/api/v1/datasets/people/rows/1/").status_code == 404
    # Another dataset keeps its files and serves on.
    assert other.file_path().is_file()
    assert api.get("/api/v1/datasets/other/rows/2/").json() == {"id": 2, "city": "Oslo"}


def test_a_rolled_back_deletion_keeps_the_files_and_the_data(tmp_path, settings, api):
    data_dir = Path(settings.GATEWAY_DATA_DIR)
    people = import_people(tmp_path)
    read_people(api)
    before = sorted(path for path in people.directory.rglob("*"))

    with pytest.raises(RuntimeError), transaction.atomic():
        people.delete()
        files.dataset_files_sweep()  # a sweep inside the deleting transaction removes nothing
        assert sorted(path for path in people.directory.rglob("*")) == before
        raise RuntimeError("rolled back")

    assert sorted(path for path in people.directory.rglob("*")) == before
    assert files_holding(data_dir, SECRET)
    read_people(api)


def test_delete_dataset_names_the_valid_slugs_for_an_unknown_one(tmp_path):
    import_people(tmp_path)
    with pytest.raises(CommandError, match="Unknown dataset 'peple'. Did you mean 'people'?"):
        call_command("delete_dataset", "peple", "--yes")
    assert Dataset.objects.filter(slug="people").exists()


def test_delete_dataset_asks_first_without_yes(tmp_path, monkeypatch):
    people = import_people(tmp_path)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="'people' was not deleted: type yes, or pass --yes"):
        call_command("delete_dataset", "people")
    assert people.file_path().is_file()

    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    call_command("delete_dataset", "people", stdout=io.StringIO())
    assert not people.directory.exists()


def test_the_command_line_exits_non_zero_on_an_unknown_slug_or_without_confirmation(tmp_path):
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
            stdin=subprocess.DEVNULL,
        )

    assert manage("migrate", "--noinput", "-v0").returncode == 0
    (tmp_path / "people.csv").write_text(PEOPLE, encoding="utf-8")
    assert (
        manage("import_dataset", str(tmp_path / "people.csv"), "--slug", "people").returncode == 0
    )

    unknown = manage("delete_dataset", "nobody", "--yes")
    assert unknown.returncode == 1
    assert "Unknown dataset 'nobody'. Valid datasets: people." in unknown.stderr
    unconfirmed = manage("delete_dataset", "people")  # no terminal to answer
    assert unconfirmed.returncode == 1
    assert "'people' was not deleted: type yes, or pass --yes." in unconfirmed.stderr
    assert (tmp_path / "var" / "datasets" / "people").is_dir()

    deleted = manage("delete_dataset", "people", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert not (tmp_path / "var" / "datasets" / "people").exists()


def test_a_slug_imported_again_starts_at_version_1_and_serves_the_new_data(tmp_path, api):
    import_people(tmp_path)
    old = import_people(tmp_path, PEOPLE, "--replace")
    assert old.version == 2
    read_people(api)
    old.delete()

    new = import_people(tmp_path, NEW_PEOPLE)

    assert new.version == 1
    assert new.file_stamp != old.file_stamp
    names = sorted(path.name for path in new.directory.rglob("*") if path.is_file())
    assert names == [f"v1-{new.file_stamp}.duckdb"]
    assert api.get("/api/v1/datasets/people/rows/1/").json()["name"] == "Edsger"
    assert [row["name"] for row in api.get("/api/v1/datasets/people/rows/").json()["results"]] == [
        "Edsger"
    ]


def delete_elsewhere(dataset: Dataset, settings) -> None:
    """What this process sees of a deletion by another process or host: the rows are gone from
    the database and the catalog's generation moved; no signal ran here."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Column._meta.db_table} WHERE dataset_id = %s", [dataset.pk])
        cursor.execute(f"DELETE FROM {Dataset._meta.db_table} WHERE id = %s", [dataset.pk])
    generations = Path(settings.GATEWAY_DATA_DIR) / "generations"
    (generations / "catalog").write_text("moved elsewhere")


@pytest.mark.usefixtures("embedded_cache")
def test_a_host_that_sees_a_deletion_removes_its_copy_and_closes_it(tmp_path, settings, api):
    data_dir = Path(settings.GATEWAY_DATA_DIR)
    people = import_people(tmp_path)
    read_people(api)
    assert open_files_under(people.directory)

    # Another host deleted it: this host's files are left until this host notices.
    delete_elsewhere(people, settings)
    assert people.directory.exists()

    listed = api.get("/api/v1/datasets/").json()  # this host's next request

    assert listed["count"] == 0
    assert not people.directory.exists()
    assert files_holding(data_dir, SECRET) == []
    assert open_files_under(people.directory) == []


@pytest.mark.usefixtures("embedded_cache")
def test_a_slug_deleted_and_imported_again_elsewhere_is_never_served_from_old_handles(
    tmp_path, settings, api
):
    people = import_people(tmp_path)
    read_people(api)  # this process holds the old version open, and keeps its row by key
    # Another process on this host deletes it (its files go) and imports the slug again.
    delete_elsewhere(people, settings)
    shutil.rmtree(people.directory)

    new = import_people(tmp_path, NEW_PEOPLE)

    assert new.version == 1
    assert api.get("/api/v1/datasets/people/rows/1/").json() == {
        "id": 1,
        "name": "Edsger",
        "email": "e***@example.org",
    }
    rows = api.get("/api/v1/datasets/people/rows/").json()["results"]
    assert [row["name"] for row in rows] == ["Edsger"]
    assert not any(str(people.file_path()) in held for held in open_files_under(new.directory))


def test_a_sweep_waits_for_an_import_that_has_not_committed_yet(settings):
    """An import's file is in place before its dataset is committed: the sweep must not take it
    for a leftover."""
    stamp = files.file_stamp_new()
    placed, committed = threading.Event(), threading.Event()
    path = files.datasets_root() / "fresh" / f"v1-{stamp}.duckdb"

    def importer():
        try:
            with files.dataset_files_lock():
                path.parent.mkdir(parents=True)
                path.write_bytes(b"the new version")
                placed.set()
                time.sleep(0.5)  # the sweep is waiting meanwhile
                Dataset.objects.create(
                    slug="fresh", title="Fresh", table="data", version=1, file_stamp=stamp
                )
            committed.set()
        finally:
            connection.close()

    def sweeper():
        try:
            files.dataset_files_sweep()
        finally:
            connection.close()

    importing = threading.Thread(target=importer)
    importing.start()
    assert placed.wait(10)
    sweeping = threading.Thread(target=sweeper)
    sweeping.start()
    importing.join(10)
    sweeping.join(10)

    assert committed.is_set()
    assert path.read_bytes() == b"the new version"


def test_a_deletion_removes_the_uploads_that_killed_imports_left_in_staging(tmp_path):
    people = import_people(tmp_path)
    area = StagingArea.create()
    (area.path / "upload.csv").write_text(PEOPLE, encoding="utf-8")
    area._lock.close()  # its process was killed: the lock is released, the area stays
    assert (area.path / LOCK_NAME).exists()

    people.delete()

    assert [path for path in staging_root().iterdir() if path.is_dir()] == []


def test_a_sweep_removes_the_row_stores_of_earlier_releases(tmp_path, settings, api):
    """Earlier releases wrote every row again beside each version (`rows/*.sqlite3`, masked and
    hidden values in plain text): nothing reads them now, and the first sweep removes them."""
    people = import_people(tmp_path)
    legacy = people.directory / files.LEGACY_ROW_STORES
    legacy.mkdir()
    (legacy / f"{people.file_path().stem}.sqlite3").write_bytes(SECRET)

    files.dataset_files_sweep()

    assert not legacy.exists()
    assert people.file_path().is_file()
    read_people(api)


def test_rows_kept_after_their_connection_closed_leave_with_the_dataset(tmp_path, api):
    people = import_people(tmp_path)
    read_people(api)
    duckdb_files.close_all()  # the connection went (an idle close), the rows by key are kept
    assert str(people.file_path()) in result_cache.files()

    people.delete()

    assert str(people.file_path()) not in result_cache.files()
