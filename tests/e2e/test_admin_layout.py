"""The admin at 1280 px: no page scrolls sideways; lists show what matters; usage filters by key."""

from __future__ import annotations

import pytest
from django.test import Client

from datasets.demo import demo_load
from keys.models import ApiKey, UsageRecord
from keys.services import api_key_issue
from keys.usage import usage_flush
from tests.e2e.conftest import admin_login, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def _call(raw_key: str, url: str) -> int:
    return Client(headers={"Authorization": f"Bearer {raw_key}"}).get(url).status_code


@pytest.fixture
def demo_with_usage(admin_user):
    """The demo dataset, two keys, and usage: answered and failed calls of each."""
    dataset, _ = demo_load(rows=300)
    sales = api_key_issue(name="Sales GPT", owner="sales@example.com", all_datasets=True)
    ops = api_key_issue(name="Ops dashboard", owner="ops@example.com", all_datasets=True)
    for url in [
        "/api/v1/datasets/",
        "/api/v1/datasets/sales/rows/?limit=5",
        "/api/v1/datasets/sales/aggregate/?group_by=product&metrics=sum:revenue",
        "/api/v1/datasets/sales/rows/?colour=red",
    ]:
        _call(sales.raw_key, url)
    _call(ops.raw_key, "/api/v1/datasets/sales/rows/?limit=2")
    _call(ops.raw_key, "/api/v1/datasets/nowhere/")
    usage_flush()
    return {"dataset": dataset, "sales": sales.key, "ops": ops.key}


def _horizontal_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_admin_pages_fit_a_1280_pixel_window(page, demo_with_usage):
    admin_login(page)
    pages = {
        "dataset": f"/admin/datasets/dataset/{demo_with_usage['dataset'].pk}/change/",
        "key list": "/admin/keys/apikey/",
        "key": f"/admin/keys/apikey/{demo_with_usage['sales'].pk}/change/",
        "usage list": "/admin/keys/usagerecord/",
    }
    overflow = {}
    for name, path in pages.items():
        page.goto(path)
        overflow[name] = _horizontal_overflow(page)
    assert overflow == dict.fromkeys(pages, 0) or all(v <= 0 for v in overflow.values()), overflow


def test_debug_shots(page, demo_with_usage):
    admin_login(page)
    pages = {
        "dataset": f"/admin/datasets/dataset/{demo_with_usage['dataset'].pk}/change/",
        "keylist": "/admin/keys/apikey/",
        "key": f"/admin/keys/apikey/{demo_with_usage['sales'].pk}/change/",
        "usage": "/admin/keys/usagerecord/",
        "source": "/admin/datasets/source/add/",
        "index": "/admin/",
        "add": "/admin/datasets/dataset/add/",
    }
    for name, path in pages.items():
        page.goto(path)
        page.screenshot(path=f"/tmp/h16/{name}.png", full_page=True)
        if name == "dataset":
            print(page.evaluate("[...document.querySelectorAll('#columns-group thead th')].map(t => t.className + ':' + Math.round(t.getBoundingClientRect().width))"))
            print(page.evaluate("[document.querySelector('#columns-group table').scrollWidth, document.querySelector('#columns-group').clientWidth]"))
            page.locator("#columns-group").screenshot(path="/tmp/h16/columns.png")
            page.locator("#dataset-preview").screenshot(path="/tmp/h16/preview.png")
