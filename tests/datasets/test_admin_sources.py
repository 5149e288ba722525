"""The source admin, through its pages as a superuser: add, test, discover, register, refresh."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from django.contrib.auth import get_user_model
from django.db import connection as django_connection

from datasets.models import Dataset, Source
from datasets.sources import dataset_register, source_create
from tests.services import POSTGRES_URL

pytestmark = pytest.mark.django_db

PG = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "Adm1n-S3cret-pw"
TABLE = "gw_t_srcadm_orders"
VIEW = "gw_t_srcadm_orders_v"
ADD_URL = "/admin/datasets/source/add/"


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def pg_orders(postgres):
    drop = [f"DROP VIEW IF EXISTS {VIEW}", f"DROP TABLE IF EXISTS {TABLE}"]
    engine = sa.create_engine(POSTGRES_URL)
    statements = [
        f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, region text, amount numeric(8, 2))",
        f"INSERT INTO {TABLE} VALUES (1, 'EU', 5), (2, 'US', 7)",
        f"CREATE VIEW {VIEW} AS SELECT id, region FROM {TABLE}",
    ]
    with engine.begin() as connection:
        for statement in drop + statements:
            connection.execute(sa.text(statement))
    yield
    with engine.begin() as connection:
        for statement in drop:
            connection.execute(sa.text(statement))
    engine.dispose()


@pytest.fixture
def sqlite_file(tmp_path):
    path = tmp_path / "shop.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT, amount REAL);
        INSERT INTO orders VALUES (1, 'EU', 5.0), (2, 'US', 7.5);
        CREATE VIEW orders_v AS SELECT id, region FROM orders;
        """
    )
    db.commit()
    db.close()
    return path


def _add(admin_client, url: str, **extra):
    data = {"name": "shop", "url": url, "password": "", "statement_timeout": "10", **extra}
    return admin_client.post(ADD_URL, data)


def _change_url(source: Source) -> str:
    return f"/admin/datasets/source/{source.pk}/change/"


def test_add_source_with_password_in_url_stores_it_encrypted(admin_client, pg_orders):
    response = _add(admin_client, f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test")
    assert response.status_code == 302
    source = Source.objects.get()
    assert (source.kind, source.url, source.password) == ("postgresql", PG, SECRET)
    with django_connection.cursor() as cursor:
        cursor.execute("SELECT url, password_encrypted FROM datasets_source")
        raw = " ".join(cursor.fetchone())
    assert SECRET not in raw


def test_add_source_with_password_field(admin_client, pg_orders):
    assert _add(admin_client, PG, password=SECRET).status_code == 302
    assert Source.objects.get().password == SECRET


def test_change_page_never_renders_the_password(admin_client, pg_orders):
    source = source_create(name="shop", url=f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test")
    page = admin_client.get(_change_url(source)).content.decode()
    assert SECRET not in page
    assert source.password_encrypted not in page
    assert 'value="postgresql://postgres@127.0.0.1:5432/test"' in page
    assert "A password is stored" in page
    listing = admin_client.get("/admin/datasets/source/").content.decode()
    assert SECRET not in listing


def test_blank_password_on_change_keeps_the_stored_one(admin_client, pg_orders):
    source = source_create(name="shop", url=f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test")
    data = {"name": "shop", "url": PG, "password": "", "statement_timeout": "25"}
    assert admin_client.post(_change_url(source), data).status_code == 302
    source.refresh_from_db()
    assert (source.password, source.statement_timeout) == (SECRET, 25)


def test_clear_password_removes_it(admin_client, pg_orders):
    source = source_create(name="shop", url=f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test")
    data = {"name": "shop", "url": PG, "clear_password": "on", "statement_timeout": "10"}
    assert admin_client.post(_change_url(source), data).status_code == 302
    source.refresh_from_db()
    assert source.password_encrypted == ""


@pytest.mark.parametrize(
    "url, reason",
    [
        (f"postgresql://postgres:{SECRET}@127.0.0.1:5432/gw_t_srcadm_no_db", "does not exist"),
        (f"postgresql://postgres:{SECRET}@127.0.0.1:1/test", "Connection refused"),
        (f"postgresql://postgres:{SECRET}@no-such-host.invalid:5432/test", "no-such-host.invalid"),
    ],
)
def test_unreachable_source_is_a_form_error_without_the_password(
    admin_client, postgres, url, reason
):
    response = _add(admin_client, url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Cannot connect to the source" in page and reason in page
    assert "Enter the password again" in page
    assert SECRET not in page
    assert not Source.objects.exists()


def test_unsupported_url_is_a_form_error(admin_client):
    response = _add(admin_client, f"oracle://scott:{SECRET}@db.example/orcl")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Unsupported database" in page and SECRET not in page


def test_change_to_an_unreachable_url_is_refused(admin_client, pg_orders):
    source = source_create(name="shop", url=PG)
    data = {"name": "shop", "url": PG.replace("5432", "1"), "statement_timeout": "10"}
    response = admin_client.post(_change_url(source), data)
    assert response.status_code == 200 and "Connection refused" in response.content.decode()
    source.refresh_from_db()
    assert source.url == PG


def test_test_connection_button_reports_success_and_failure(admin_client, sqlite_file):
    source = source_create(name="shop", url=f"sqlite:///{sqlite_file}")
    response = admin_client.get(f"/admin/datasets/source/{source.pk}/test-connection/", follow=True)
    assert "Connection to shop works." in response.content.decode()
    sqlite_file.unlink()
    response = admin_client.get(f"/admin/datasets/source/{source.pk}/test-connection/", follow=True)
    assert "Connection failed." in response.content.decode()
    assert "does not exist" in response.content.decode()


def test_test_connection_action_on_a_closed_port(admin_client):
    source = Source.objects.create(name="closed", kind="postgresql", url=PG.replace("5432", "1"))
    response = admin_client.post(
        "/admin/datasets/source/",
        {"action": "test_connection", "_selected_action": [source.pk]},
        follow=True,
    )
    assert "Connection refused" in response.content.decode()


def test_discover_page_lists_tables_and_views_with_slugs(admin_client, pg_orders):
    source = source_create(name="pg", url=PG)
    page = admin_client.get(f"/admin/datasets/source/{source.pk}/discover/").content.decode()
    assert f"public.{TABLE}" in page and f"public.{VIEW}" in page
    assert f'value="{TABLE}"' in page  # proposed slug and hidden table name


def _discovered_rows(admin_client, source: Source) -> dict[str, dict]:
    response = admin_client.get(f"/admin/datasets/source/{source.pk}/discover/")
    return {row["qualified_name"]: row for row in response.context["rows"]}


def test_discover_registers_selected_table_and_view_in_one_step(admin_client, pg_orders):
    source = source_create(name="pg", url=PG)
    rows = _discovered_rows(admin_client, source)
    table, view = rows[f"public.{TABLE}"], rows[f"public.{VIEW}"]
    data = {"rows": str(len(rows)), "register": [str(table["index"]), str(view["index"])]}
    for row in rows.values():
        i = row["index"]
        data.update(
            {
                f"table-{i}": row["table"],
                f"schema-{i}": row["schema"],
                f"slug-{i}": row["slug"],
                f"pk-{i}": "",
            }
        )
    data[f"slug-{table['index']}"] = "orders"
    data[f"slug-{view['index']}"] = "orders_view"
    data[f"pk-{view['index']}"] = "id"
    response = admin_client.post(f"/admin/datasets/source/{source.pk}/discover/", data)
    assert response.status_code == 302
    orders, orders_view = (
        Dataset.objects.get(slug="orders"),
        Dataset.objects.get(slug="orders_view"),
    )
    assert (orders.table, orders.schema_name, orders.primary_key, orders.row_count) == (
        TABLE,
        "",
        "id",
        2,
    )
    assert dict(orders.columns.values_list("name", "type")) == {
        "id": "integer",
        "region": "string",
        "amount": "number",
    }
    assert orders.columns.get(name="region").enum == ["EU", "US"]
    assert (orders_view.table, orders_view.primary_key) == (VIEW, "id")
    # Registered rows are shown as such on the next visit.
    rows = _discovered_rows(admin_client, source)
    assert rows[f"public.{TABLE}"]["dataset"] == orders


def test_discover_shows_registration_errors_on_the_page(admin_client, sqlite_file):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    data = {
        "rows": "1",
        "register": ["0"],
        "table-0": "orders",
        "schema-0": "main",
        "slug-0": "Not A Slug",
        "pk-0": "",
    }
    response = admin_client.post(f"/admin/datasets/source/{source.pk}/discover/", data)
    assert response.status_code == 200
    assert "Invalid slug" in response.content.decode()
    assert not Dataset.objects.exists()


def test_discover_on_an_unreachable_source_is_a_message(admin_client):
    source = Source.objects.create(name="closed", kind="mysql", url="mysql://root@127.0.0.1:1/test")
    response = admin_client.get(f"/admin/datasets/source/{source.pk}/discover/", follow=True)
    assert response.status_code == 200
    assert "Cannot connect to source" in response.content.decode()


def test_refresh_statistics_button_recomputes_row_counts(admin_client, sqlite_file):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    dataset = dataset_register(source=source, table="orders", slug="orders")
    db = sqlite3.connect(sqlite_file)
    db.execute("INSERT INTO orders VALUES (3, 'APAC', 1.0)")
    db.commit()
    db.close()
    response = admin_client.post(
        f"/admin/datasets/source/{source.pk}/refresh-statistics/", follow=True
    )
    assert "Statistics of orders refreshed: 3 rows." in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.row_count == 3
    assert dataset.columns.get(name="region").enum == ["APAC", "EU", "US"]


def test_change_page_has_the_source_buttons_and_datasets(admin_client, sqlite_file):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    dataset_register(source=source, table="orders", slug="orders")
    page = admin_client.get(_change_url(source)).content.decode()
    assert "Test connection" in page and "Discover tables" in page and "Refresh statistics" in page
    assert "/admin/datasets/dataset/" in page and ">orders<" in page


def test_url_too_long_comes_back_without_its_password(admin_client):
    response = _add(admin_client, f"postgresql://u:{SECRET}@host/{'d' * 600}")
    page = response.content.decode()
    assert response.status_code == 200 and "at most 500" in page
    assert SECRET not in page


def test_password_from_another_secret_key_asks_for_it_again(admin_client, sqlite_file):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    Source.objects.filter(pk=source.pk).update(password_encrypted="gAAAAAnot-a-valid-token")
    data = {"name": "lite", "url": f"sqlite:///{sqlite_file}", "statement_timeout": "10"}
    response = admin_client.post(_change_url(source), data)
    assert response.status_code == 200
    assert "cannot be decrypted" in response.content.decode()
