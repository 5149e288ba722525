"""The Connect page for one key: `/admin/connect/?key=<key id>`, as the key's pages link to it."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from keys.services import api_key_issue, api_key_revoke
from tests.datasets.schema.conftest import PUBLIC_URL

pytestmark = pytest.mark.django_db


def _page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _checked(page: str) -> set[str]:
    """The slugs whose checkbox is ticked."""
    return set(re.findall(r'name="datasets" value="([^"]+)" checked', page))


def _content(page: str) -> str:
    """The page's own content, without the admin's header (its CSRF token differs per page)."""
    return page[page.index('id="content-main"') :]


def _staff_with(*codenames: str) -> Client:
    """A staff user (not a superuser) with exactly these permissions."""
    user = User.objects.create(username="staff-" + "-".join(codenames), is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_a_key_chooses_its_datasets_the_schema_url_and_the_examples(
    staff, demo, catalog, public_url
):
    catalog(3)
    issued = api_key_issue(name="Sales GPT", datasets=["sales", "d02"])
    page = _page(staff, f"/admin/connect/?key={issued.key.key_id}")
    assert _checked(page) == {"sales", "d02"}
    assert f'id="schema-url">{PUBLIC_URL}/openapi.json?datasets=d02,sales</code>' in page
    assert 'id="key-chosen"' in page and "Sales GPT" in page
    assert f'placeholder="gw_{issued.key.key_id}_…"' in page
    urls = re.findall(r'data-url="([^"]+)"', page)
    assert urls and all(re.match(r"/api/v1/datasets/(sales|d02)/", url) for url in urls), urls
    # The form keeps the key when the datasets are changed.
    assert f'<input type="hidden" name="key" value="{issued.key.key_id}">' in page


def test_every_example_on_a_key_page_answers_with_that_key(staff, demo, catalog, public_url):
    catalog(2)  # datasets the key cannot read, listed first: the page must not use them
    issued = api_key_issue(name="Sales only", datasets=["sales"])
    page = _page(staff, f"/admin/connect/?key={issued.key.key_id}")
    urls = re.findall(r'data-url="([^"]+)"', page)
    assert len(urls) >= 3
    for url in urls:
        answer = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
        assert answer.status_code == 200, (url, answer.content)


def test_a_key_for_every_dataset_chooses_them_all(staff, demo, catalog, public_url):
    catalog(2)
    issued = api_key_issue(name="Everything", all_datasets=True)
    page = _page(staff, f"/admin/connect/?key={issued.key.key_id}")
    assert _checked(page) == {"sales", "d01", "d02"}
    assert f'<code class="url" id="schema-url">{PUBLIC_URL}/openapi.json</code>' in page


def test_a_key_for_some_datasets_keeps_its_schema_to_them_even_when_that_is_all(
    staff, demo, public_url
):
    issued = api_key_issue(name="Sales GPT", datasets=["sales"])
    page = _page(staff, f"/admin/connect/?key={issued.key.key_id}")
    # A dataset added later must not reach a GPT whose key cannot read it.
    assert f"{PUBLIC_URL}/openapi.json?datasets=sales" in page


def test_datasets_chosen_on_the_page_win_and_those_outside_the_key_are_named(
    staff, demo, catalog, public_url
):
    catalog(2)
    issued = api_key_issue(name="Sales GPT", datasets=["sales"])
    page = _page(staff, f"/admin/connect/?key={issued.key.key_id}&datasets=sales&datasets=d01")
    assert _checked(page) == {"sales", "d01"}
    assert "The key Sales GPT cannot read d01" in page


@pytest.mark.parametrize("state", ["revoked", "unknown"])
def test_a_revoked_or_unknown_key_is_explained_and_chooses_nothing(
    staff, demo, catalog, public_url, state
):
    catalog(2)
    issued = api_key_issue(name="Old GPT", datasets=["sales"])
    key_id = issued.key.key_id
    if state == "revoked":
        api_key_revoke(key_id=key_id)
    else:
        key_id = "nosuchkey"
    page = _page(staff, f"/admin/connect/?key={key_id}")
    problem = re.search(r'<p class="warning" id="key-problem">(.*?)</p>', page, re.S).group(1)
    expected = "is revoked" if state == "revoked" else f"No API key has the id {key_id}"
    assert expected in problem
    assert _checked(page) == set()
    assert 'id="schema-url"' not in page and "data-url=" not in page
    assert 'id="nothing-selected"' in page


def test_staff_who_may_not_view_keys_never_learns_a_keys_datasets(demo, catalog, public_url):
    catalog(3)
    issued = api_key_issue(name="Secret scope", datasets=["d02"])
    staff = _staff_with("view_dataset")  # datasets yes, keys no
    known = _page(staff, f"/admin/connect/?key={issued.key.key_id}")
    unknown = _page(staff, "/admin/connect/?key=nosuchkey")
    assert _checked(known) == set()
    assert "d02" not in re.findall(r'data-url="/api/v1/datasets/([^/]+)/', known)
    assert "Secret scope" not in known
    assert "may not view API keys" in known
    # Whether the key exists is not told either: the page is the same as for an unknown id.
    assert _content(known).replace(issued.key.key_id, "ID") == _content(unknown).replace(
        "nosuchkey", "ID"
    )


def test_staff_who_may_view_keys_gets_the_keys_datasets(demo, catalog, public_url):
    catalog(3)
    issued = api_key_issue(name="Scoped", datasets=["d02"])
    page = _page(
        _staff_with("view_dataset", "view_apikey"), f"/admin/connect/?key={issued.key.key_id}"
    )
    assert _checked(page) == {"d02"}
