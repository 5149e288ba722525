"""Hostile text in every admin-editable and source-derived field never runs as script.

A staff user may write a dataset's title, description and column descriptions and the privacy
policy; a source's owner decides its table names, column names and values (which become enums,
minimums and maximums). All of it reaches HTML pages (the admin, the Connect page, /privacy/)
and the schema that Swagger UI and ReDoc render on Gateway's own origin. Each payload, if it
ran, would call HOSTILE_PATH and set a window flag.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3

import pytest

from datasets.models import Column, Dataset, PrivacyPolicy, Source
from datasets.services import dataset_import
from datasets.sources import dataset_register, source_create
from tests.e2e.conftest import admin_login

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE_PATH = "/hostile-script-ran"
RUN = f"window.hostileRan=true;fetch('{HOSTILE_PATH}')"
# An image error handler, a break out of an attribute, a script element and an SVG load
# handler: whatever context the text lands in, one of them would run. It starts with "<", which
# sorts after digits, so that it becomes the maximum of a date column.
PAYLOAD = f'<img src=x onerror="{RUN}">"\'><script>{RUN}</script><svg onload="{RUN}"></svg>'
# For fields too short for the whole payload (column names, API names).
SHORT = f"<img src=x onerror={RUN}>"


def _upload_dataset(tmp_path) -> Dataset:
    """An uploaded dataset whose title, description, column names and values are hostile."""
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["id", "region", "amount", SHORT])
    writer.writerow([1, "EU", 10.5, PAYLOAD])
    writer.writerow([2, PAYLOAD, 20.0, "plain"])
    path = tmp_path / "hostile.csv"
    path.write_text(rows.getvalue())
    dataset = dataset_import(
        path=path, slug="hostile_upload", title=PAYLOAD[:200], description=PAYLOAD, primary_key="id"
    )
    for column in Column.objects.filter(dataset=dataset):
        column.description = PAYLOAD
        column.save()
    return dataset


def _sqlite_dataset(tmp_path) -> Dataset:
    """A SQLite source's table with a hostile name, a hostile column and a hostile maximum."""
    path = tmp_path / "hostile.sqlite3"  # outside the data directory
    db = sqlite3.connect(path)
    table = SHORT.replace('"', '""')
    db.execute(
        f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, region TEXT, day DATE, "{table}" TEXT)'
    )
    # SQLite keeps text in a DATE column, and text sorts after dates: the payload becomes the
    # column's maximum, published in the schema and shown in the admin.
    db.executemany(
        f'INSERT INTO "{table}" VALUES (?, ?, ?, ?)',
        [(1, "EU", "2024-01-01", "a"), (2, PAYLOAD, PAYLOAD, PAYLOAD)],
    )
    db.commit()
    db.close()
    source = source_create(name="hostile source", url=f"sqlite:///{path}")
    dataset = dataset_register(
        source=source, table=SHORT, slug="hostile_table", title=PAYLOAD[:200], description=PAYLOAD
    )
    day = Column.objects.get(dataset=dataset, physical_name="day")
    assert day.max_value == PAYLOAD, "the planted maximum did not reach the column"
    return dataset


@pytest.fixture
def hostile_catalog(tmp_path) -> list[Dataset]:
    """Both datasets and a hostile privacy policy."""
    PrivacyPolicy.objects.create(text=PAYLOAD)
    return [_upload_dataset(tmp_path), _sqlite_dataset(tmp_path)]


def _watch(page) -> list[str]:
    """Every sign of the payload running on this page: a call to HOSTILE_PATH or a dialog."""
    ran: list[str] = []
    page.on("request", lambda request: HOSTILE_PATH in request.url and ran.append(request.url))
    page.on("dialog", lambda dialog: (ran.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    return ran


def _assert_no_script_ran(page, ran: list[str], path: str) -> None:
    # Let images fail and handlers fire: no request is pending for half a second.
    page.wait_for_load_state("networkidle")
    flag = page.evaluate("window.hostileRan === true")
    assert not ran and not flag, f"hostile text ran as script on {path}: {ran or 'window flag'}"


def test_hostile_text_never_runs_on_any_page(page, expect, admin_user, hostile_catalog):
    upload, table = hostile_catalog
    ran = _watch(page)

    page.goto("/redoc/")
    # ReDoc rendered both datasets' operations, hostile text and all.
    for operation_id in ["list_hostile_upload_rows", "list_hostile_table_rows"]:
        expect(page.locator(f"[data-section-id='operation/{operation_id}']")).to_be_attached()
    _assert_no_script_ran(page, ran, "/redoc/")

    page.goto("/swagger/")
    expect(page.get_by_text("list_hostile_table_rows", exact=True).first).to_be_visible()
    _assert_no_script_ran(page, ran, "/swagger/")

    page.goto("/privacy/")
    expect(page.locator("body")).to_contain_text("<img src=x")
    _assert_no_script_ran(page, ran, "/privacy/")

    admin_login(page)
    source = Source.objects.get(name="hostile source")
    for path in [
        "/admin/",
        "/admin/connect/",
        "/admin/datasets/dataset/",
        f"/admin/datasets/dataset/{upload.pk}/change/",
        f"/admin/datasets/dataset/{table.pk}/change/",
        f"/admin/datasets/source/{source.pk}/change/",
    ]:
        page.goto(path)
        expect(page.locator("#content")).to_be_visible()
        _assert_no_script_ran(page, ran, path)
    # The hostile text was on the admin pages, as text.
    page.goto(f"/admin/datasets/dataset/{upload.pk}/change/")
    expect(page.locator("#columns-group")).to_contain_text(re.compile(r"<img src=x"))


def test_a_key_entered_in_swagger_ui_is_not_kept_in_the_browser(page, expect, transactional_db):
    secret = "gw_swaggerkey_notkeptanywhere0123456789abcdef"
    page.goto("/swagger/")
    page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.locator("#auth-bearer-value").fill(secret)
    dialog.get_by_role("button", name="Apply credentials").click()
    expect(
        dialog.get_by_role("button", name="Remove authorization")
    ).to_be_visible()  # the page uses the key
    dialog.get_by_role("button", name="Close").click()
    stored = page.evaluate("JSON.stringify(Object.assign({}, localStorage, sessionStorage))")
    assert secret not in stored
    # A script on this origin reading storage later finds nothing; a reload has forgotten the key.
    page.reload()
    page.locator("button.authorize").first.click()
    expect(page.locator(".modal-ux #auth-bearer-value")).to_have_value("")
    expect(
        page.locator(".modal-ux").get_by_role("button", name="Remove authorization")
    ).to_have_count(0)
