import pytest
from tests.e2e.test_admin_layout import demo_with_usage  # noqa
from tests.e2e.conftest import admin_login
pytestmark = pytest.mark.django_db(transaction=True)

def test_dbg(page, demo_with_usage):
    admin_login(page)
    for name, path in [("keylist", "/admin/keys/apikey/"), ("usage", "/admin/keys/usagerecord/"), ("key", f"/admin/keys/apikey/{demo_with_usage['sales'].pk}/change/"), ("source", "/admin/datasets/source/add/")]:
        page.goto(path)
        page.screenshot(path=f"/tmp/h16/{name}.png", full_page=True)
        if page.locator("#result_list").count():
            print(name, page.evaluate("[...document.querySelectorAll('#result_list thead th')].map(t => t.className + ':' + Math.round(t.getBoundingClientRect().width))"))
