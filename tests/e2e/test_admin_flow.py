"""The admin's path through Gateway in a real browser: data in, key out, GPT connected, key revoked."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from datasets.demo import demo_load
from datasets.models import Column, Dataset
from keys.models import ApiKey
from keys.services import api_key_issue
from tests.e2e.conftest import admin_login, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS_CSV = b"""order_id,order_date,region,product,revenue
1,2024-04-03,EU,Widget,120.50
2,2024-04-17,US,Gadget,99.00
3,2024-05-02,EU,Gadget,45.25
4,2024-06-28,APAC,Widget,310.00
5,2024-07-01,US,Widget,12.75
"""
PUBLIC_URL = "https://gateway.example.com"


def api_get(url: str, key: str) -> tuple[int, dict]:
    """GET a URL of the API with a key, as any HTTP client would: (status, JSON body)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def upload_orders(page, tmp_path) -> None:
    """Add the orders dataset through Datasets > Add dataset, as a person would."""
    page.locator("#datasets-dataset").get_by_role("link", name="Datasets").click()
    page.get_by_role("link", name=re.compile(r"Add dataset")).click()
    page.fill("#id_slug", "orders")
    page.fill("#id_title", "Orders")
    page.fill("#id_description", "One row per order in 2024, with region, product and revenue.")
    csv_path = tmp_path / "orders.csv"
    csv_path.write_bytes(ORDERS_CSV)
    page.set_input_files("#id_file", str(csv_path))
    screenshot(page, "admin-dataset-add.png")
    # The form is sent by XMLHttpRequest (upload progress), then the page follows the redirect.
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r"/admin/datasets/dataset/\d+/change/$"))


def test_admin_uploads_a_csv_sees_its_columns_and_describes_one(page, expect, admin_user, tmp_path):
    admin_login(page)
    upload_orders(page, tmp_path)

    columns = page.locator("#columns-group")
    for physical_name in ["order_id", "order_date", "region", "product", "revenue"]:
        expect(columns).to_contain_text(physical_name)
    # The statistics are shown with the columns: the enum of region, the range of the date.
    expect(columns).to_contain_text("APAC, EU, US")
    expect(columns).to_contain_text("2024-04-03")
    expect(page.locator("#dataset-preview")).to_contain_text("Widget")

    region_row = columns.locator("tr.form-row", has_text="region")
    description = region_row.locator("input[name$='-description'], textarea[name$='-description']")
    description.fill("Sales region: EU, US or APAC.")
    page.click("input[name=_continue]")
    page.wait_for_url(re.compile(r"/admin/datasets/dataset/\d+/change/$"))
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    expect(
        page.locator("#columns-group tr.form-row", has_text="region").locator(
            "[name$='-description']"
        )
    ).to_have_value("Sales region: EU, US or APAC.")
    dataset = Dataset.objects.get(slug="orders")
    assert dataset.row_count == 5
    assert (
        Column.objects.get(dataset=dataset, physical_name="region").description
        == "Sales region: EU, US or APAC."
    )
    # The page at 1280 px and its screenshot: tests/e2e/test_admin_layout.py.


def test_upload_in_the_browser_shows_the_import_message(page, expect, admin_user, tmp_path):
    admin_login(page)
    upload_orders(page, tmp_path)
    expect(page.locator("ul.messagelist")).to_contain_text(
        "Imported 5 rows into 'orders'", timeout=2000
    )


def test_admin_issues_a_key_reads_it_once_and_revokes_it(page, expect, admin_user, live_server):
    demo_load(rows=200)
    admin_login(page)
    page.locator("#keys-apikey").get_by_role("link", name="API keys").click()
    page.get_by_role("link", name=re.compile(r"Add API key")).click()
    page.fill("#id_name", "Sales GPT")
    page.fill("#id_owner", "data-team@example.com")
    page.check("#id_all_datasets")
    page.click("input[name=_save]")

    expect(page.locator("#content")).to_contain_text("it is shown this once")
    raw_key = page.input_value("#gateway-raw-key")
    assert re.fullmatch(r"gw_[A-Za-z0-9]+_[A-Za-z0-9]{32,}", raw_key)
    page.click("#gateway-copy-key")
    expect(page.locator("#gateway-copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == raw_key
    screenshot(page, "admin-key-issued.png")

    status, body = api_get(f"{live_server.url}/api/v1/datasets/", raw_key)
    assert status == 200
    assert [dataset["slug"] for dataset in body["results"]] == ["sales"]

    # Once: reloading the page, the key's own page, the add page and the key list never show it.
    page.reload()
    assert raw_key not in page.content()
    key = ApiKey.objects.get(key_id=raw_key.split("_")[1])
    for path in [
        f"/admin/keys/apikey/{key.pk}/change/",
        "/admin/keys/apikey/add/",
        "/admin/keys/apikey/",
    ]:
        page.goto(path)
        assert raw_key.rsplit("_", 1)[1] not in page.content()
    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    expect(page.locator("#content")).to_contain_text(key.key_id)
    expect(page.locator("#content")).to_contain_text("cannot be shown")

    page.get_by_role("link", name="Revoke", exact=True).click()
    page.wait_for_url(f"**/admin/keys/apikey/{key.pk}/revoke/")
    expect(page.locator("#content")).to_contain_text("cannot be undone")
    page.click("input[type=submit][value='Yes, revoke this key']")
    page.wait_for_url(f"**/admin/keys/apikey/{key.pk}/change/")
    expect(page.locator("ul.messagelist")).to_contain_text("is revoked")

    status, body = api_get(f"{live_server.url}/api/v1/datasets/", raw_key)
    assert status == 401
    assert body["error"]["status"] == 401


def test_reloading_the_issued_key_page_issues_no_second_key(page, expect, admin_user):
    admin_login(page)
    page.goto("/admin/keys/apikey/add/")
    page.fill("#id_name", "Reloaded")
    page.check("#id_all_datasets")
    page.click("input[name=_save]")
    expect(page.locator("#gateway-raw-key")).to_be_visible()
    page.reload()
    assert ApiKey.objects.filter(name="Reloaded").count() == 1


def test_connect_page_copies_the_schema_url_and_runs_an_example(
    page, expect, admin_user, live_server, settings
):
    settings.GATEWAY_PUBLIC_URL = PUBLIC_URL
    demo_load(rows=2000)
    raw_key = api_key_issue(name="Connect page", all_datasets=True).raw_key
    admin_login(page)
    page.get_by_role("link", name="Connect to ChatGPT").first.click()
    page.wait_for_url("**/admin/connect/")

    schema_url = f"{PUBLIC_URL}/openapi.json"
    expect(page.locator("#schema-url")).to_have_text(schema_url)
    page.locator("button.copy[data-copy='schema-url']").click()
    expect(page.locator("button.copy[data-copy='schema-url']")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == schema_url
    expect(page.locator("#rules-ok")).to_be_visible()
    expect(page.locator("#privacy-url")).to_have_text(f"{PUBLIC_URL}/privacy/")
    expect(page.locator("#server-warning")).to_have_count(0)
    screenshot(page, "admin-connect.png")

    # The copied URL's document, as the GPT Builder would import it (fetched here from the
    # live server, which the public URL stands for).
    with urllib.request.urlopen(f"{live_server.url}/openapi.json", timeout=10) as response:
        document = json.load(response)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": PUBLIC_URL}]

    page.fill("#run-key", raw_key)
    run = page.locator("button.run").first
    run.click()
    expect(page.locator(f"#{run.get_attribute('data-output')}")).to_contain_text("HTTP 200")


def test_connect_page_warns_when_the_server_is_not_https(page, expect, admin_user, live_server):
    admin_login(page)
    page.goto("/admin/connect/")
    expect(page.locator("#schema-url")).to_have_text(f"{live_server.url}/openapi.json")
    expect(page.locator("#server-warning")).to_contain_text("Not importable yet")


def test_swagger_ui_shows_the_operations_without_other_hosts(
    page, expect, transactional_db, settings
):
    settings.GATEWAY_PUBLIC_URL = PUBLIC_URL
    demo_load(rows=200)
    page.goto("/swagger/")
    for operation_id in ["list_datasets", "describe_dataset", "list_sales_rows", "aggregate_sales"]:
        expect(page.get_by_text(operation_id, exact=True).first).to_be_visible()
    screenshot(page, "swagger-ui.png")
