"""Per-process caches drop their values when a change to the data behind them commits."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.test import Client

from datasets.models import Column, Dataset
from datasets.selectors import dataset_spec
from gatewaysite import generations
from gatewaysite.generations import ProcessCache, bump, generation
from keys.models import ApiKey
from tests.keys.conftest import make_dataset, redis_cache  # noqa: F401  (a fixture)


@pytest.fixture
def loads():
    return []


@pytest.fixture
def embedded_cache(settings):
    """The embedded default's cache (local memory), whatever the suite runs on."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def _loader(loads, value):
    def load():
        loads.append(value)
        return value

    return load


def test_value_is_loaded_once_while_the_generation_holds(loads):
    values = ProcessCache("test-a")
    assert values.get("k", _loader(loads, 1)) == 1
    assert values.get("k", _loader(loads, 2)) == 1
    assert loads == [1]


def test_a_bump_in_this_process_drops_the_value_at_once(loads):
    values = ProcessCache("test-b")
    values.get("k", _loader(loads, 1))
    bump("test-b")
    assert values.get("k", _loader(loads, 2)) == 2


def test_a_bump_from_another_process_is_seen_at_the_next_read(loads, settings, embedded_cache):
    values = ProcessCache("test-c")
    values.get("k", _loader(loads, 1))
    # The other process shares only the store: the data directory's file on the default.
    (settings.GATEWAY_DATA_DIR / "generations" / "test-c").write_text("elsewhere")
    assert values.get("k", _loader(loads, 2)) == 2


def test_the_embedded_default_keeps_generations_in_the_data_directory(settings, embedded_cache):
    bump("test-file")
    stored = (settings.GATEWAY_DATA_DIR / "generations" / "test-file").read_text()
    assert generation("test-file") == stored


@pytest.mark.usefixtures("redis_cache")
def test_with_redis_generations_live_in_the_shared_cache(settings):
    from django.core.cache import cache

    bump("test-redis")
    assert cache.get("gateway:generation:test-redis") == generation("test-redis")
    assert not (settings.GATEWAY_DATA_DIR / "generations").exists()


def test_a_value_older_than_the_safety_bound_is_reloaded(loads, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(generations.time, "monotonic", lambda: clock[0])
    values = ProcessCache("test-d")
    values.get("k", _loader(loads, 1))
    clock[0] += generations.MAX_AGE_SECONDS - 1
    assert values.get("k", _loader(loads, 2)) == 1
    clock[0] += 2
    assert values.get("k", _loader(loads, 3)) == 3


def test_the_least_recently_used_values_leave_past_the_byte_budget(loads):
    values = ProcessCache("test-e", max_bytes=10, size=len)
    values.get("a", lambda: "aaaa")
    values.get("b", lambda: "bbbb")
    values.get("a", lambda: "never")  # a is now the most recent
    values.get("c", lambda: "cccc")  # 12 bytes: b goes
    assert values.get("a", _loader(loads, "reloaded")) == "aaaa"
    assert values.get("b", _loader(loads, "bbbb")) == "bbbb"
    assert loads == ["bbbb"]


def test_a_value_larger_than_the_budget_is_served_but_not_kept(loads):
    values = ProcessCache("test-f", max_bytes=3, size=len)
    assert values.get("a", _loader(loads, "aaaa")) == "aaaa"
    assert values.get("a", _loader(loads, "aaaa")) == "aaaa"
    assert len(loads) == 2


def test_the_generation_is_read_once_per_request(db, monkeypatch):
    make_dataset("orders")
    reads = []
    original = generations._read
    monkeypatch.setattr(generations, "_read", lambda names: reads.append(names) or original(names))
    Client().get("/openapi.json")
    assert len(reads) == 1
    assert {"catalog", "keys"} <= set(reads[0])


def test_peek_gives_the_held_value_and_its_generation_without_reading_it(loads, monkeypatch):
    values = ProcessCache("test-g")
    assert values.peek("k") is None
    values.get("k", _loader(loads, 1))
    held = generation("test-g")
    monkeypatch.setattr(generations, "_read", lambda names: pytest.fail("read"))
    assert values.peek("k") == (1, held)
    assert values.peek("other") is None
    values.clear()
    assert values.peek("k") is None


def test_generations_read_by_the_round_trip_serve_the_rest_of_the_request(loads, monkeypatch):
    values = ProcessCache("test-h")
    values.get("k", _loader(loads, 1))
    monkeypatch.setattr(generations, "_read", lambda names: pytest.fail("read"))
    generations._request_started()
    try:
        assert generations.request_generations() is None
        generations.request_generations_set({"test-h": "moved elsewhere"})
        assert generations.request_generations() == {"test-h": "moved elsewhere"}
        assert values.get("k", _loader(loads, 2)) == 2
    finally:
        generations._request_finished()
    # Outside a request nothing is kept: each read asks the store.
    generations.request_generations_set({"test-h": "ignored"})
    assert generations.request_generations() is None


@pytest.mark.django_db
def test_nothing_loaded_inside_a_transaction_is_kept():
    dataset = make_dataset("orders")
    assert dataset_spec("orders").title == "Orders"
    # The test runs inside a transaction: the next read is from the database, not a copy.
    Dataset.objects.filter(pk=dataset.pk).update(title="Renamed")
    assert dataset_spec("orders").title == "Renamed"


def _catalog_moves(action) -> bool:
    before = generation("catalog")
    action()
    return generation("catalog") != before


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "write",
    [
        lambda dataset: Dataset.objects.filter(pk=dataset.pk).update(title="New"),
        lambda dataset: Column.objects.bulk_create(
            [Column(dataset=dataset, physical_name="extra", name="extra", type="string")]
        ),
        lambda dataset: Column.objects.bulk_update(
            [Column(pk=dataset.columns.first().pk, description="Changed")], ["description"]
        ),
        lambda dataset: dataset.columns.filter(name="region").delete(),
        lambda dataset: dataset.save(),
    ],
    ids=["update", "bulk_create", "bulk_update", "delete", "save"],
)
def test_every_write_path_moves_the_generation_when_it_commits(write):
    dataset = make_dataset("orders")
    assert _catalog_moves(lambda: write(dataset))


@pytest.mark.django_db(transaction=True)
def test_the_generation_moves_on_commit_not_before():
    dataset = make_dataset("orders")
    before = generation("catalog")
    with transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk).update(title="New")
        dataset.columns.update(description="Changed")
        assert generation("catalog") == before
    assert generation("catalog") != before


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_never_moves_the_generation():
    dataset = make_dataset("orders")
    before = generation("catalog")
    with pytest.raises(RuntimeError), transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk).update(title="New")
        raise RuntimeError
    assert generation("catalog") == before


@pytest.mark.django_db(transaction=True)
def test_last_used_alone_does_not_reload_the_key_table():
    from keys.services import api_key_issue

    key = api_key_issue(name="k", all_datasets=True).key
    before = generation("keys")
    ApiKey.objects.filter(pk=key.pk).update(last_used="2026-01-01T00:00:00Z")
    assert generation("keys") == before
    ApiKey.objects.filter(pk=key.pk).update(name="renamed")
    assert generation("keys") != before


@pytest.mark.django_db(transaction=True)
def test_a_read_racing_an_uncommitted_edit_never_keeps_the_old_columns():
    """An admin-style edit in a transaction while another thread reads: the edit is seen after commit."""
    dataset = make_dataset("orders")
    column = dataset.columns.get(name="product")
    assert dataset_spec("orders").any_column("product").description == ""
    edited, read = threading.Event(), threading.Event()
    failures = []

    def admin_edit():
        try:
            with transaction.atomic():
                column.description = "What was sold."
                column.pii = Column.Pii.HIDE
                column.save()
                edited.set()
                read.wait(10)
        except Exception as error:  # reported by the test thread
            failures.append(error)
        finally:
            edited.set()
            connection.close()

    editor = threading.Thread(target=admin_edit)
    editor.start()
    edited.wait(10)
    # This request's read happens while the edit is not committed: it sees the old columns.
    assert dataset_spec("orders").any_column("product").description == ""
    read.set()
    editor.join(10)
    assert not failures
    spec = dataset_spec("orders")
    assert spec.any_column("product").pii == Column.Pii.HIDE
    assert spec.any_column("product").description == "What was sold."
