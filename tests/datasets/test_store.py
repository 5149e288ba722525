"""Versions in an object store (GATEWAY_STORAGE_URL), against a real S3 server (SeaweedFS).

"Another host" is this process with a fresh data directory and empty process caches: the same
database, no file of the version, exactly what a second machine behind the load balancer has.
"""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from datasets import store as object_store
from datasets import version_cache
from datasets.engine.connections import duckdb_files
from datasets.engine.result_cache import result_cache
from datasets.models import Dataset, StoredVersion
from datasets.selectors import dataset_spec
from datasets.services import DatasetImportError, dataset_import
from gatewaysite.generations import process_caches_reset
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

PEOPLE = "id,name,email\n1,Ada,ada@example.org\n2,Grace,grace@example.org\n"


@pytest.fixture(autouse=True)
def _close_files():
    yield
    duckdb_files.close_all()
    result_cache.clear()
    version_cache._store_down_until = 0.0


@pytest.fixture
def api():
    from keys.services import api_key_issue

    raw_key = api_key_issue(name="reader", all_datasets=True).raw_key
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


def import_csv(tmp_path: Path, slug: str, content: str, *, replace: bool = False) -> Dataset:
    path = tmp_path / f"{slug}.csv"
    path.write_text(content, encoding="utf-8")
    return dataset_import(path=path, slug=slug, pii={"email": "mask"}, replace=replace)


def another_host(settings, tmp_path: Path, name: str = "host-b") -> Path:
    """Become a host that shares the database and the store, and nothing on disk."""
    duckdb_files.close_all()
    result_cache.clear()
    settings.GATEWAY_DATA_DIR = tmp_path / name
    settings.GATEWAY_DATA_DIR.mkdir()
    process_caches_reset()
    return settings.GATEWAY_DATA_DIR


def store_unreachable(settings) -> None:
    settings.GATEWAY_STORAGE_ENDPOINT = f"http://127.0.0.1:{free_port()}"
    object_store.store_forget_client()


def read_people(api: Client) -> None:
    rows = api.get("/api/v1/datasets/people/rows/")
    assert rows.status_code == 200, rows.content
    assert [row["name"] for row in rows.json()["results"]] == ["Ada", "Grace"]
    row = api.get("/api/v1/datasets/people/rows/2/")
    assert row.status_code == 200, row.content
    assert row.json() == {"id": 2, "name": "Grace", "email": "g***@example.org"}


def test_an_import_writes_its_version_to_the_store_before_it_goes_live(store, tmp_path):
    dataset = import_csv(tmp_path, "people", PEOPLE)
    local = dataset.file_path()
    checksum = hashlib.sha256(local.read_bytes()).hexdigest()
    assert dataset.file_checksum == checksum
    stored = StoredVersion.objects.get()
    assert (
        stored.key == dataset.file_key() == object_store.version_key("people", local.name, checksum)
    )
    assert stored.key.startswith(f"{store[1]}/people/") and stored.superseded is None
    keys = {item.key: item.size for item in object_store.stored_objects()}
    assert keys == {stored.key: local.stat().st_size}


def test_a_failed_upload_leaves_the_previous_version_serving(store, settings, tmp_path, api):
    import_csv(tmp_path, "people", PEOPLE)
    store_unreachable(settings)
    with pytest.raises(DatasetImportError, match="previous version is still served"):
        import_csv(tmp_path, "people", "id,name,email\n9,Nobody,n@example.org\n", replace=True)
    dataset = Dataset.objects.get(slug="people")
    assert dataset.version == 1
    assert StoredVersion.objects.count() == 1
    read_people(api)


def test_another_host_fetches_the_version_on_its_first_request(store, settings, tmp_path, api):
    dataset = import_csv(tmp_path, "people", PEOPLE)
    host_b = another_host(settings, tmp_path)
    fetched = host_b / "datasets" / "people" / dataset.file_path().name
    assert not fetched.exists()
    read_people(api)
    assert hashlib.sha256(fetched.read_bytes()).hexdigest() == dataset.file_checksum
    assert api.get("/api/v1/datasets/people/").status_code == 200
    aggregate = api.get("/api/v1/datasets/people/aggregate/?metrics=count")
    assert aggregate.json()["results"] == [{"count": 2}]
    # Nothing of the fetch is left beside the version.
    assert sorted(p.name for p in (host_b / "staging").iterdir() if p.is_dir()) == []


def test_a_replacement_on_another_host_reaches_the_first(store, settings, tmp_path, api):
    import_csv(tmp_path, "people", PEOPLE)
    host_a = settings.GATEWAY_DATA_DIR
    read_people(api)
    another_host(settings, tmp_path)
    import_csv(tmp_path, "people", "id,name,email\n1,Edsger,e@example.org\n", replace=True)
    # Back on host A, which still holds version 1 only.
    duckdb_files.close_all()
    result_cache.clear()
    settings.GATEWAY_DATA_DIR = host_a
    process_caches_reset()
    rows = api.get("/api/v1/datasets/people/rows/").json()["results"]
    assert [row["name"] for row in rows] == ["Edsger"]
    versions = StoredVersion.objects.order_by("pk")
    assert [version.superseded is None for version in versions] == [False, True]


def test_a_damaged_copy_in_the_store_is_never_served(store, settings, tmp_path, api):
    dataset = import_csv(tmp_path, "people", PEOPLE)
    damaged = tmp_path / "damaged.duckdb"
    content = bytearray(dataset.file_path().read_bytes())
    content[5000] ^= 0xFF
    damaged.write_bytes(bytes(content))
    object_store.version_put(damaged, dataset.file_key(), "whatever")
    host_b = another_host(settings, tmp_path)
    response = api.get("/api/v1/datasets/people/rows/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
    assert "damaged" in response.json()["error"]["message"]
    assert not list((host_b / "datasets").rglob("*.duckdb"))


def test_without_the_store_a_host_serves_what_it_holds_and_names_the_store_for_the_rest(
    store, settings, tmp_path, api
):
    import_csv(tmp_path, "people", PEOPLE)
    import_csv(tmp_path, "other", "id,name,email\n1,Lin,l@example.org\n")
    another_host(settings, tmp_path)
    read_people(api)  # fetched while the store answers
    store_unreachable(settings)
    read_people(api)
    response = api.get("/api/v1/datasets/other/rows/")
    assert response.status_code == 503
    assert response["Retry-After"]
    error = response.json()["error"]
    assert error["code"] == "store_unavailable"
    assert "object store" in error["message"] and "retry shortly" not in error["message"]
    assert "127.0.0.1" not in error["message"]  # the store's address is for its operator


def test_requests_at_the_same_moment_fetch_a_version_once(store, settings, tmp_path, monkeypatch):
    import_csv(tmp_path, "people", PEOPLE)
    another_host(settings, tmp_path)
    spec = dataset_spec("people")
    assert spec is not None
    fetches = []
    real_get = version_cache.version_get

    def counted(key, target):
        fetches.append(key)
        real_get(key, target)

    monkeypatch.setattr(version_cache, "version_get", counted)
    start = threading.Barrier(8)
    paths: list[str] = []

    def ask() -> None:
        start.wait()
        paths.append(version_cache.local_version(spec))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert fetches == [spec.file_key]
    assert paths == [spec.file_path] * 8


def _sales(rows: int, seed: int) -> str:
    lines = ["id,name,email,note"]
    for number in range(rows):
        digest = hashlib.sha256(f"{seed}-{number}".encode()).hexdigest()
        lines.append(f"{number},n{seed}-{number},{number}@example.org,{digest}")
    return "\n".join(lines) + "\n"


# Rows of the `_sales` shape whose version takes a little under a megabyte (the
# smallest DuckDB file is about 0.8 MB).
ROWS = 500
CACHE_MB = 2


def _cached_bytes(data_dir: Path, slug: str = "") -> int:
    folder = data_dir / "datasets" / slug
    return sum(path.stat().st_size for path in folder.rglob("v*") if path.is_file())


def test_versions_larger_than_the_cache_limit_keep_to_it_and_are_all_served(
    store, settings, tmp_path, api
):
    slugs = ["first", "second", "third"]
    for seed, slug in enumerate(slugs):
        import_csv(tmp_path, slug, _sales(ROWS, seed))
    sizes = sorted(_cached_bytes(settings.GATEWAY_DATA_DIR, slug) for slug in slugs)
    settings.GATEWAY_CACHE_MB = CACHE_MB
    # Room for two of the three versions, never for all three.
    assert sizes[1] + sizes[2] <= CACHE_MB * 1024 * 1024 < sum(sizes), sizes
    host_b = another_host(settings, tmp_path)
    for round_ in range(2):
        for slug in slugs:
            response = api.get(f"/api/v1/datasets/{slug}/rows/7/")
            assert response.status_code == 200, (round_, slug, response.content)
            assert response.json()["name"].endswith("-7")
            assert _cached_bytes(host_b) <= CACHE_MB * 1024 * 1024, (round_, slug)


def test_a_version_a_query_is_reading_is_not_evicted(store, settings, tmp_path):
    import_csv(tmp_path, "people", PEOPLE)
    import_csv(tmp_path, "other", "id,name,email\n1,Lin,l@example.org\n")
    another_host(settings, tmp_path)
    people = dataset_spec("people")
    other = dataset_spec("other")
    assert people is not None and other is not None
    version_cache.local_version(people)
    with duckdb_files.reading(people.file_path):
        # Nothing fits in no room at all: every version not being read goes.
        settings.GATEWAY_CACHE_MB = 0
        version_cache.local_version(other)
        assert Path(people.file_path).exists()
        assert version_cache.cache_trim() == 1  # `other`, which nothing reads
    assert version_cache.cache_trim() == 1  # `people`, now that its query ended
    assert not Path(people.file_path).exists()


def test_a_version_only_this_host_holds_is_never_evicted(store, settings, tmp_path):
    settings.GATEWAY_STORAGE = None  # imported before the store was configured
    dataset = import_csv(tmp_path, "people", PEOPLE)
    assert dataset.file_checksum == ""
    settings.GATEWAY_STORAGE = store
    settings.GATEWAY_CACHE_MB = 0
    assert version_cache.cache_trim() == 0
    assert dataset.file_path().exists()


def test_prune_store_removes_superseded_versions_after_their_retention(store, tmp_path):
    import_csv(tmp_path, "people", PEOPLE)
    import_csv(tmp_path, "people", "id,name,email\n1,Edsger,e@example.org\n", replace=True)
    gone = import_csv(tmp_path, "other", "id,name,email\n1,Lin,l@example.org\n")
    gone.delete()
    leftover = tmp_path / "leftover.duckdb"
    leftover.write_bytes(b"an upload whose import failed afterwards")
    object_store.version_put(
        leftover, object_store.version_key("people", "v9-x.duckdb", "0" * 64), "0" * 64
    )
    current = Dataset.objects.get(slug="people").file_key()

    def prune(hours: int = 24) -> str:
        out = io.StringIO()
        call_command("prune_store", "--retention-hours", str(hours), stdout=out)
        return out.getvalue()

    assert "Removed 0 superseded version(s) and 0 leftover" in prune()
    assert len(list(object_store.stored_objects())) == 4
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert "Removed 2 superseded version(s) and 1 leftover" in prune()
    assert [item.key for item in object_store.stored_objects()] == [current]
    assert list(StoredVersion.objects.values_list("key", flat=True)) == [current]


def test_prune_store_keeps_every_version_at_least_an_hour(store):
    with pytest.raises(CommandError, match="at least 1 hour"):
        call_command("prune_store", "--retention-hours", "0")


def test_prune_store_without_a_store_says_so(db, settings):
    settings.GATEWAY_STORAGE = None
    with pytest.raises(CommandError, match="GATEWAY_STORAGE_URL is not set"):
        call_command("prune_store")


def test_store_versions_puts_earlier_uploads_in_the_store_for_every_host(
    store, settings, tmp_path, api
):
    settings.GATEWAY_STORAGE = None  # imported on one machine, before there was a store
    import_csv(tmp_path, "people", PEOPLE)
    settings.GATEWAY_STORAGE = store
    host_a = settings.GATEWAY_DATA_DIR
    another_host(settings, tmp_path)
    response = api.get("/api/v1/datasets/people/rows/")
    assert response.status_code == 503
    assert "store_versions" in response.json()["error"]["message"]
    with pytest.raises(CommandError, match="Not on this host, so not stored: people"):
        call_command("store_versions", stdout=io.StringIO())

    settings.GATEWAY_DATA_DIR = host_a
    out = io.StringIO()
    call_command("store_versions", stdout=out)
    assert "Stored people." in out.getvalue()
    assert Dataset.objects.get(slug="people").file_checksum
    another_host(settings, tmp_path, "host-c")
    read_people(api)
