"""The source admin, through its pages as a superuser: add, test, discover, register, refresh."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection as django_connection

from datasets.models import Dataset, Source
from datasets.sources import dataset_register, source_create
from tests.datasets.fake_mysql import FakeMySQLServer
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


# -- Refused sources -----------------------------------------------------------------------------


def test_source_in_the_data_directory_is_a_form_error_with_the_reason(admin_client, settings):
    own = settings.GATEWAY_DATA_DIR / "gateway.sqlite3"
    sqlite3.connect(own).close()
    response = _add(admin_client, f"sqlite:///{own}")
    assert response.status_code == 200
    assert "inside Gateway&#x27;s data directory" in response.content.decode()
    assert not Source.objects.exists()


def test_driver_option_outside_the_allow_list_is_a_form_error(admin_client):
    response = _add(admin_client, "mysql://root@127.0.0.1:3306/test?local_infile=1")
    assert response.status_code == 200
    assert "Option &#x27;local_infile&#x27; is not allowed" in response.content.decode()
    assert not Source.objects.exists()


def test_password_in_the_query_is_stored_encrypted_and_never_listed(admin_client, pg_orders):
    response = _add(admin_client, f"postgresql://postgres@127.0.0.1:5432/test?password={SECRET}")
    assert response.status_code == 302
    source = Source.objects.get()
    assert (source.url, source.password) == (PG, SECRET)
    assert SECRET not in admin_client.get("/admin/datasets/source/").content.decode()
    assert SECRET not in admin_client.get(_change_url(source)).content.decode()


def test_a_url_stored_with_its_query_password_is_never_shown(admin_client, sqlite_file):
    url = f"postgresql://postgres@127.0.0.1:1/test?password={SECRET}"
    source = Source.objects.create(name="legacy", kind="postgresql", url=url)
    assert SECRET not in admin_client.get("/admin/datasets/source/").content.decode()
    assert SECRET not in admin_client.get(_change_url(source)).content.decode()


def test_rogue_mysql_server_makes_add_source_a_form_error_and_gets_no_file(admin_client, tmp_path):
    secret = tmp_path / "environ"
    secret.write_text("GATEWAY_SECRET_KEY=never-leaves-this-machine\n")
    with FakeMySQLServer(str(secret)) as server:
        response = _add(admin_client, f"mysql://root@127.0.0.1:{server.port}/test")
    assert response.status_code == 200
    assert "asked to read a file from Gateway&#x27;s machine" in response.content.decode()
    assert server.file_requests == 1 and server.received_after_request == b""
    assert not Source.objects.exists()


def test_rogue_mysql_server_makes_the_connection_test_a_message(admin_client, tmp_path):
    secret = tmp_path / "environ"
    secret.write_text("GATEWAY_SECRET_KEY=never-leaves-this-machine\n")
    with FakeMySQLServer(str(secret)) as server:
        url = f"mysql://root@127.0.0.1:{server.port}/test"
        source = Source.objects.create(name="rogue", kind="mysql", url=url)
        response = admin_client.get(
            f"/admin/datasets/source/{source.pk}/test-connection/", follow=True
        )
        action = admin_client.post(
            "/admin/datasets/source/",
            {"action": "test_connection", "_selected_action": [source.pk]},
            follow=True,
        )
    for page in (response, action):
        assert page.status_code == 200
        assert "Connection failed." in page.content.decode()
    assert server.file_requests == 2 and server.received_after_request == b""


# -- The discover form ---------------------------------------------------------------------------


@pytest.mark.parametrize("rows", ["abc", "-1", "1e9", "99999999", "²"])
def test_altered_discover_form_is_a_message_not_a_500(admin_client, sqlite_file, rows):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    data = {"rows": rows, "register": ["0"], "table-0": "orders", "slug-0": "orders"}
    response = admin_client.post(f"/admin/datasets/source/{source.pk}/discover/", data)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/datasets/source/{source.pk}/discover/"
    page = admin_client.get(response["Location"]).content.decode()
    assert "The form was not sent as shown" in page
    assert not Dataset.objects.exists()


# -- Permissions ---------------------------------------------------------------------------------


def _staff(client, *codenames: str):
    user = get_user_model().objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="datasets", codename__in=list(codenames))
    )
    client.force_login(user)
    return client


VIEW_ONLY = ("view_source", "view_dataset")
SOURCES = ("view_source", "add_source", "change_source", "view_dataset")
SOURCES_AND_DATASETS = (*SOURCES, "add_dataset", "change_dataset")


@pytest.mark.parametrize(
    "codenames, allowed",
    [((), False), (VIEW_ONLY, False), (SOURCES, True), (SOURCES_AND_DATASETS, True)],
)
def test_test_connection_needs_change_source(client, sqlite_file, codenames, allowed):
    source = source_create(name="shop", url=f"sqlite:///{sqlite_file}")
    staff = _staff(client, *codenames)
    button = staff.get(f"/admin/datasets/source/{source.pk}/test-connection/", follow=True)
    action = staff.post(
        "/admin/datasets/source/",
        {"action": "test_connection", "_selected_action": [source.pk]},
        follow=True,
    )
    assert (button.status_code == 200) is allowed
    for page in (button, action):
        assert ("Connection to shop works." in page.content.decode()) is allowed


@pytest.mark.parametrize(
    "codenames, allowed",
    [((), False), (VIEW_ONLY, False), (SOURCES, False), (SOURCES_AND_DATASETS, True)],
)
def test_refresh_statistics_needs_change_source_and_change_dataset(
    client, sqlite_file, codenames, allowed
):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    dataset = dataset_register(source=source, table="orders", slug="orders")
    db = sqlite3.connect(sqlite_file)
    db.execute("INSERT INTO orders VALUES (3, 'APAC', 1.0)")
    db.commit()
    db.close()
    staff = _staff(client, *codenames)
    button = staff.post(f"/admin/datasets/source/{source.pk}/refresh-statistics/")
    assert (button.status_code == 302) is allowed
    dataset.refresh_from_db()
    assert (dataset.row_count == 3) is allowed
    Dataset.objects.filter(pk=dataset.pk).update(row_count=2)
    staff.post(
        "/admin/datasets/source/",
        {"action": "refresh_statistics", "_selected_action": [source.pk]},
    )
    dataset.refresh_from_db()
    assert (dataset.row_count == 3) is allowed


@pytest.mark.parametrize(
    "codenames, allowed",
    [((), False), (VIEW_ONLY, False), (("view_source", "change_source"), False), (SOURCES, True)],
)
def test_adding_a_source_needs_add_source(client, sqlite_file, codenames, allowed):
    staff = _staff(client, *codenames)
    response = _add(staff, f"sqlite:///{sqlite_file}")
    assert (response.status_code == 302) is allowed
    assert Source.objects.exists() is allowed


@pytest.mark.parametrize(
    "codenames, allowed",
    [((), False), (VIEW_ONLY, False), (("view_source", "add_source"), False), (SOURCES, True)],
)
def test_changing_a_source_needs_change_source(client, sqlite_file, tmp_path, codenames, allowed):
    source = source_create(name="shop", url=f"sqlite:///{sqlite_file}")
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    staff = _staff(client, *codenames)
    data = {"name": "shop", "url": f"sqlite:///{other}", "statement_timeout": "10"}
    staff.post(_change_url(source), data)
    source.refresh_from_db()
    assert (source.url == f"sqlite:///{other}") is allowed


@pytest.mark.parametrize(
    "codenames, allowed",
    [(VIEW_ONLY, False), (SOURCES, False), (SOURCES_AND_DATASETS, True)],
)
def test_discover_needs_change_source_and_add_dataset(client, sqlite_file, codenames, allowed):
    source = source_create(name="lite", url=f"sqlite:///{sqlite_file}")
    staff = _staff(client, *codenames)
    page = staff.get(f"/admin/datasets/source/{source.pk}/discover/")
    assert (page.status_code == 200) is allowed
    data = {"rows": "1", "register": ["0"], "table-0": "orders", "schema-0": "main"}
    staff.post(f"/admin/datasets/source/{source.pk}/discover/", {**data, "slug-0": "orders"})
    assert Dataset.objects.exists() is allowed
