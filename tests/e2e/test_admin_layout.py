"""The admin at 1280 px: no page scrolls sideways, lists show what matters without scrolling,
usage filters by key, and the upload form proposes a slug from the file name."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from datasets.demo import demo_load
from keys.services import api_key_issue
from keys.usage import usage_flush
from tests.e2e.conftest import admin_login, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER_CSV = b"""date,precipitation,temp_max,weather
2012-01-01,0.0,12.8,drizzle
2012-01-02,10.9,10.6,rain
2012-01-03,0.8,11.7,rain
"""


def _call(raw_key: str, url: str) -> dict:
    response = Client(headers={"Authorization": f"Bearer {raw_key}"}).get(url)
    return {"status": response.status_code, "body": response.json()}


@pytest.fixture
def demo_with_usage(admin_user):
    """The demo dataset, two keys, and usage of each: answered calls and failed ones."""
    dataset, _ = demo_load(rows=300)
    sales = api_key_issue(name="Sales GPT", owner="sales@example.com", all_datasets=True)
    ops = api_key_issue(name="Ops dashboard", owner="ops@example.com", all_datasets=True)
    for url in [
        "/api/v1/datasets/",
        "/api/v1/datasets/sales/rows/?limit=5",
        "/api/v1/datasets/sales/aggregate/?group_by=product&metrics=sum:revenue",
    ]:
        _call(sales.raw_key, url)
    failed = _call(sales.raw_key, "/api/v1/datasets/sales/rows/?colour=red")
    _call(ops.raw_key, "/api/v1/datasets/sales/rows/?limit=2")
    _call(ops.raw_key, "/api/v1/datasets/nowhere/")
    usage_flush()
    return {
        "dataset": dataset,
        "sales": sales.key,
        "ops": ops.key,
        "error_code": failed["body"]["error"]["code"],
    }


def _overflow(page) -> int:
    """How many pixels the page is wider than the window (0 or less: no sideways scroll)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def _cut(page, selector: str) -> int:
    """How many pixels of the element's content are hidden behind its own scroll bar."""
    return page.locator(selector).evaluate("box => box.scrollWidth - box.clientWidth")


def _visible_columns(page, *names: str) -> dict[str, bool]:
    """Whether each list column's header lies inside the window, with nothing scrolled."""
    return {
        name: page.locator(f"#result_list th.column-{name}").evaluate(
            "th => th.getBoundingClientRect().right <= window.innerWidth"
        )
        for name in names
    }


def test_no_admin_page_scrolls_sideways_at_1280_pixels(page, expect, demo_with_usage):
    admin_login(page)
    pages = {
        "dataset": f"/admin/datasets/dataset/{demo_with_usage['dataset'].pk}/change/",
        "key list": "/admin/keys/apikey/",
        "key": f"/admin/keys/apikey/{demo_with_usage['sales'].pk}/change/",
        "usage list": "/admin/keys/usagerecord/",
        "usage per dataset": "/admin/keys/usagerecord/datasets/",
        "add dataset": "/admin/datasets/dataset/add/",
    }
    overflow = {}
    for name, path in pages.items():
        page.goto(path)
        assert page.evaluate("window.innerWidth") == 1280
        overflow[name] = max(_overflow(page), 0)
    assert overflow == dict.fromkeys(pages, 0)

    page.goto(pages["dataset"])
    # The columns table fits its box; the preview is wider, and scrolls inside its own box.
    assert _cut(page, "#columns-group table") <= 0
    assert _cut(page, "#dataset-preview .gateway-scroll") >= 0
    assert _overflow(page) <= 0
    preview = page.locator("#dataset-preview")
    expect(preview.locator("th", has_text="customer_email")).to_contain_text(
        "admin only: the API masks these values"
    )
    expect(preview.locator("th", has_text="region")).not_to_contain_text("admin only")
    # Each column's name is shown once above its API name field, not three times.
    region = page.locator("#columns-group tr.form-row", has_text="region")
    assert region.inner_text().count("region") == 1
    page.locator("#columns-group").evaluate("group => group.scrollIntoView({block: 'start'})")
    screenshot(page, "admin-dataset-columns.png")
    preview.evaluate("box => box.scrollIntoView({block: 'start'})")
    screenshot(page, "admin-dataset-preview.png")

    # "View site" opens a page that exists: Connect to ChatGPT.
    page.get_by_role("link", name="View site").click()
    page.wait_for_url("**/admin/connect/")


def test_the_key_list_shows_state_last_use_and_creation_without_scrolling(page, demo_with_usage):
    admin_login(page)
    page.goto("/admin/keys/apikey/")
    assert _cut(page, "#changelist-form .results") <= 0
    assert _visible_columns(page, "state_shown", "last_used_shown", "created_shown") == {
        "state_shown": True,
        "last_used_shown": True,
        "created_shown": True,
    }
    row = page.locator("#result_list tbody tr", has_text="Sales GPT")
    assert "active" in row.locator("td.field-state_shown").inner_text()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d", row.locator("td.field-last_used_shown").inner_text()
    )
    screenshot(page, "admin-keys.png")


def test_the_usage_list_shows_errors_and_filters_by_key(page, expect, demo_with_usage):
    admin_login(page)
    page.goto("/admin/keys/usagerecord/")
    assert _cut(page, "#changelist-form .results") <= 0
    columns = ["time_shown", "key_shown", "dataset", "status_shown", "duration_shown", "rows"]
    assert _visible_columns(page, *columns) == dict.fromkeys(columns, True)
    results = page.locator("#result_list tbody tr")
    expect(results).to_have_count(6)
    # Times to the second; the failed call says why it failed.
    first_time = results.first.locator("td.field-time_shown, th.field-time_shown").inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", first_time), first_time
    failed = page.locator("#result_list tbody tr", has_text=demo_with_usage["error_code"])
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("Sales GPT")
    screenshot(page, "admin-usage.png")

    ops = demo_with_usage["ops"]
    page.locator("#changelist-filter").get_by_role(
        "link", name=f"Ops dashboard ({ops.key_id})"
    ).click()
    page.wait_for_url(f"**/admin/keys/usagerecord/?key={ops.key_id}")
    expect(results).to_have_count(2)
    for index in range(2):
        expect(results.nth(index)).to_contain_text("Ops dashboard")
        expect(results.nth(index)).not_to_contain_text("Sales GPT")

    # The key's own page links to its records.
    page.goto(f"/admin/keys/apikey/{ops.pk}/change/")
    page.locator("#key-usage-records").click()
    page.wait_for_url(f"**/admin/keys/usagerecord/?key={ops.key_id}")
    expect(results).to_have_count(2)


def test_the_upload_form_proposes_a_slug_from_the_file_name(page, expect, admin_user, tmp_path):
    csv_path = tmp_path / "seattle-weather.csv"
    csv_path.write_bytes(WEATHER_CSV)
    admin_login(page)
    page.goto("/admin/datasets/dataset/add/")
    page.set_input_files("#id_file", str(csv_path))
    expect(page.locator("#id_slug")).to_have_value("seattle_weather")

    # A slug the server would refuse is replaced before anything is sent: the file stays chosen.
    page.fill("#id_slug", "seattle-weather")
    page.click("input[name=_save]")
    expect(page.locator("#slug-proposal")).to_contain_text("proposed seattle_weather instead")
    assert page.url.endswith("/admin/datasets/dataset/add/")
    expect(page.locator("#id_slug")).to_have_value("seattle_weather")
    assert page.locator("#id_file").evaluate("input => input.files.length") == 1

    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r"/admin/datasets/dataset/\d+/change/$"))
    expect(page.locator("ul.messagelist")).to_contain_text("Imported 3 rows into 'seattle_weather'")
