"""The dataset admin: upload a file, see its columns and a preview, edit columns, replace the file."""

from __future__ import annotations

import sqlite3

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.engine.connections import duckdb_files
from datasets.models import Column, Dataset, DatasetImport, Source
from datasets.services import dataset_import

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/datasets/dataset/add/"
CSV = b"order_id,region,customer_email,amount\n1,EU,a@x.org,10.5\n2,US,b@x.org,20\n3,EU,c@x.org,7\n"


@pytest.fixture(autouse=True)
def _close_files():
    yield
    duckdb_files.close_all()


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def change_url(dataset: Dataset) -> str:
    return f"/admin/datasets/dataset/{dataset.pk}/change/"


def add(admin_client, name: str = "sales.csv", content: bytes = CSV, **fields):
    data = {"slug": "sales", "title": "", "description": "", "primary_key_column": "", **fields}
    return admin_client.post(ADD_URL, {**data, "file": upload(name, content)})


def imported(tmp_path) -> Dataset:
    """The sales dataset, imported as the add page's background import does (see test_admin_imports)."""
    path = tmp_path / "sales.csv"
    path.write_bytes(CSV)
    return dataset_import(path=path, slug="sales")


def test_add_page_offers_a_file_upload_with_progress(admin_client):
    response = admin_client.get(ADD_URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'type="file"' in page
    assert 'enctype="multipart/form-data"' in page
    assert "datasets/upload_progress.js" in page
    assert "data-max-bytes" in page


def test_change_page_shows_columns_row_count_preview_and_replace_link(admin_client, tmp_path):
    dataset = imported(tmp_path)

    response = admin_client.get(change_url(dataset))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Preview: the first rows of 3" in page
    assert "b@x.org" in page and "10.5" in page
    assert 'name="columns-0-name"' in page  # the columns inline
    assert f"/admin/datasets/dataset/{dataset.pk}/replace/" in page


def change_form(dataset: Dataset) -> dict:
    """The change page's form as the admin sends it back unchanged."""
    columns = list(dataset.columns.order_by("position"))
    data = {
        "title": dataset.title,
        "description": dataset.description,
        "enabled": "on",
        "time_zone": dataset.time_zone,
        "default_ordering": dataset.default_ordering,
        "default_page_size": str(dataset.default_page_size),
        "max_page_size": str(dataset.max_page_size),
        "columns-TOTAL_FORMS": str(len(columns)),
        "columns-INITIAL_FORMS": str(len(columns)),
        "columns-MIN_NUM_FORMS": "0",
        "columns-MAX_NUM_FORMS": "0",
    }
    for index, column in enumerate(columns):
        prefix = f"columns-{index}-"
        data.update(
            {
                prefix + "id": str(column.pk),
                prefix + "dataset": str(dataset.pk),
                prefix + "name": column.name,
                prefix + "type": column.type,
                prefix + "description": column.description,
                prefix + "unit": column.unit,
                prefix + "exposed": "on",
                prefix + "filterable": "on",
                prefix + "sortable": "on",
                prefix + "pii": column.pii,
                prefix + "aggregation": column.aggregation,
            }
        )
    return data


def test_columns_are_edited_inline(admin_client, tmp_path):
    dataset = imported(tmp_path)
    data = change_form(dataset)
    data["columns-2-name"] = "email"
    data["columns-2-pii"] = "mask"
    data["columns-2-description"] = "Buyer's e-mail"
    data["columns-2-physical_name"] = "tampered"  # read-only: ignored

    response = admin_client.post(change_url(dataset), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    email = Column.objects.get(dataset=dataset, position=2)
    assert (email.name, email.pii, email.description) == ("email", "mask", "Buyer's e-mail")
    assert email.physical_name == "customer_email"
    assert email.enum is None  # its three e-mails were an enum until it was masked


# A file whose content is refused fails its background import: tests/datasets/test_admin_imports.py.
@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [("notes.pdf", b"%PDF", "Unsupported file type")],
)
def test_import_errors_are_form_errors(admin_client, name, content, expected):
    response = add(admin_client, name=name, content=content)
    assert response.status_code == 200
    assert expected in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert not Dataset.objects.filter(slug="sales").exists()


def test_a_file_over_the_upload_limit_is_a_form_error(admin_client, settings):
    settings.GATEWAY_UPLOAD_MAX_MB = 1
    response = add(admin_client, content=b"id,text\n1," + b"x" * (1024 * 1024 + 10) + b"\n")
    assert response.status_code == 200
    assert "the upload limit is 1 MB" in response.content.decode()
    assert not Dataset.objects.exists()


def test_existing_slug_is_a_form_error(admin_client, tmp_path):
    imported(tmp_path)
    response = add(admin_client)
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_a_rejected_slug_comes_back_replaced_by_one_from_the_file_name(admin_client):
    response = add(admin_client, name="seattle-weather.csv", slug="seattle-weather")
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "Proposed instead: seattle_weather" in " ".join(form.errors["slug"])
    assert form["slug"].value() == "seattle_weather"
    assert 'value="seattle_weather"' in response.content.decode()
    assert not DatasetImport.objects.exists()


def test_a_taken_slug_is_replaced_by_a_free_one(admin_client, tmp_path):
    imported(tmp_path)
    response = add(admin_client, name="sales.csv", slug="sales")
    assert response.context["adminform"].form["slug"].value() == "sales_2"


def test_a_blank_slug_is_made_from_the_file_name(admin_client):
    # A file type that is refused before any import starts: the form shows what it made.
    response = add(admin_client, name="Seattle Weather 2024.pdf", slug="")
    form = response.context["adminform"].form
    assert (form.cleaned_data["slug"], form.cleaned_data["title"]) == (
        "seattle_weather_2024",
        "Seattle weather 2024",
    )
    assert "Unsupported file type" in " ".join(form.errors["file"])


def test_the_add_form_checks_the_slug_pattern_in_the_browser(admin_client):
    page = admin_client.get(ADD_URL).content.decode()
    assert 'pattern="[a-z][a-z0-9_]{0,39}"' in page
    assert "datasets/slug_from_file.js" in page


def test_the_preview_labels_the_values_the_api_does_not_show(admin_client, tmp_path):
    dataset = imported(tmp_path)
    Column.objects.filter(dataset=dataset, physical_name="customer_email").update(pii="mask")
    Column.objects.filter(dataset=dataset, physical_name="amount").update(exposed=False)
    page = admin_client.get(change_url(dataset)).content.decode()
    preview = page[page.index('id="dataset-preview"') :]
    assert "admin only: the API masks these values" in preview
    assert "admin only: not exposed by the API" in preview
    assert preview.count("admin only: the API") == 1  # region and order_id are shown as they are


def test_a_source_dataset_page_previews_the_table_and_has_no_replace(admin_client, tmp_path):
    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT)")
        connection.execute("INSERT INTO items VALUES (1, 'spoon'), (2, 'fork')")
    source = Source.objects.create(name="shop", kind="sqlite", url=f"sqlite:///{database}")
    dataset = Dataset.objects.create(slug="items", title="Items", source=source, table="items")
    Column.objects.create(
        dataset=dataset, position=0, physical_name="id", name="id", type="integer"
    )
    Column.objects.create(
        dataset=dataset, position=1, physical_name="label", name="label", type="string"
    )

    response = admin_client.get(change_url(dataset))
    page = response.content.decode()
    assert response.status_code == 200
    assert "spoon" in page and "fork" in page
    assert "/replace/" not in page
    assert admin_client.get(f"/admin/datasets/dataset/{dataset.pk}/replace/").status_code == 302


def test_preview_of_a_missing_file_says_so(admin_client, tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(CSV)
    dataset = dataset_import(path=path, slug="gone")
    dataset.file_path().unlink()
    page = admin_client.get(change_url(dataset)).content.decode()
    assert "No preview: the file of version 1 is missing" in page


def test_dataset_pages_need_a_staff_user(client):
    response = client.get(ADD_URL)
    assert response.status_code == 302
    assert "/admin/login/" in response.url


def test_replace_of_an_unknown_dataset_is_not_found(admin_client):
    for object_id in ("999", "not-a-number"):
        response = admin_client.get(f"/admin/datasets/dataset/{object_id}/replace/")
        assert response.status_code == 404


def test_view_only_staff_see_a_dataset_but_cannot_change_or_replace_it(client, tmp_path):
    from django.contrib.auth.models import Permission, User

    dataset = imported(tmp_path)
    viewer = User.objects.create(username="viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_dataset"))
    client.force_login(viewer)

    page = client.get(change_url(dataset)).content.decode()
    assert "b@x.org" in page  # the preview is a read
    assert f"/admin/datasets/dataset/{dataset.pk}/replace/" not in page
    replace_url = f"/admin/datasets/dataset/{dataset.pk}/replace/"
    assert client.get(replace_url).status_code == 403
    response = client.post(replace_url, {"file": upload("v2.csv", b"order_id,region\n9,EU\n")})
    assert response.status_code == 403
    assert client.post(change_url(dataset), {"title": "Changed"}).status_code == 403
    dataset.refresh_from_db()
    assert (dataset.version, dataset.title, dataset.row_count) == (1, "Sales", 3)


# Units: suggested from the column names, set by the admin

PENGUINS = b"id,species,flipper_length_mm,body_mass_g,year\n1,Adelie,181,3750,2007\n2,Gentoo,217,5400,2008\n"


def penguins(tmp_path) -> Dataset:
    path = tmp_path / "penguins.csv"
    path.write_bytes(PENGUINS)
    return dataset_import(path=path, slug="penguins")


def test_a_suggested_unit_is_offered_and_published_only_once_confirmed(admin_client, tmp_path):
    dataset = penguins(tmp_path)
    assert set(dataset.columns.values_list("unit", flat=True)) == {""}  # nothing published yet
    page = admin_client.get(change_url(dataset)).content.decode()
    assert 'placeholder="mm?"' in page and 'placeholder="g?"' in page
    response = admin_client.post(
        "/admin/datasets/dataset/",
        {"action": "confirm_suggested_units", "_selected_action": [dataset.pk]},
        follow=True,
    )
    assert "Units set on 2 columns: flipper_length_mm (mm), body_mass_g (g)." in (
        response.content.decode()
    )
    units = dict(dataset.columns.values_list("name", "unit"))
    assert units == {
        "id": "",
        "species": "",
        "flipper_length_mm": "mm",
        "body_mass_g": "g",
        "year": "",
    }
    Column.objects.filter(dataset=dataset, name="body_mass_g").update(unit="kg")
    admin_client.post(
        "/admin/datasets/dataset/",
        {"action": "confirm_suggested_units", "_selected_action": [dataset.pk]},
    )
    assert dataset.columns.get(name="body_mass_g").unit == "kg"  # the admin's own unit stays


def test_view_only_staff_cannot_set_units(client, tmp_path):
    from django.contrib.auth.models import Permission, User

    dataset = penguins(tmp_path)
    viewer = User.objects.create(username="viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_dataset"))
    client.force_login(viewer)
    client.post(
        "/admin/datasets/dataset/",
        {"action": "confirm_suggested_units", "_selected_action": [dataset.pk]},
    )
    assert set(dataset.columns.values_list("unit", flat=True)) == {""}


def test_a_replaced_file_keeps_the_units_of_unchanged_columns(tmp_path):
    dataset = penguins(tmp_path)
    Column.objects.filter(dataset=dataset, name="flipper_length_mm").update(unit="mm")
    path = tmp_path / "v2.csv"
    path.write_bytes(PENGUINS + b"3,Chinstrap,195,3800,2009\n")
    dataset_import(path=path, slug="penguins", replace=True)
    assert dataset.columns.get(name="flipper_length_mm").unit == "mm"
