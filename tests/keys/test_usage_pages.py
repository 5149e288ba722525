"""The admin usage pages show any recorded string as text and never fail on it; they show the
daily counts of calls refused without a valid key."""

from __future__ import annotations

import datetime as dt
import html
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone

from keys.models import RejectedCalls, UsageRecord
from tests.keys.conftest import bearer

pytestmark = pytest.mark.django_db

# Dataset strings a usage record can hold: a valid key may call /api/v1/datasets/<anything>/.
ODD_SLUGS = [
    "a/b c",
    "<x>",
    "x" * 300,
    "é€漢字",
    "Mixed-Case",
    "-",
    "quote\"'&amp;",
    "%2F",
    "..",
    "tab\there",
]


@pytest.fixture
def admin_client(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _stored(dataset: str) -> str:
    # What the column keeps (the recorder cuts a longer name the same way).
    return dataset[: UsageRecord._meta.get_field("dataset").max_length]


def _record(dataset: str, status: int = 200) -> None:
    UsageRecord.objects.create(
        time=timezone.now(),
        key_id="AAAAAAAAAAAA",
        dataset=_stored(dataset),
        operation="rows",
        status=status,
        duration_ms=1.0,
    )


def test_usage_per_dataset_shows_any_recorded_slug_as_text(admin_client, orders):
    for slug in ODD_SLUGS:
        _record(slug)
    response = admin_client.get("/admin/keys/usagerecord/datasets/")
    assert response.status_code == 200
    page = response.content.decode()
    for slug in ODD_SLUGS:
        assert html.escape(_stored(slug)) in page, slug
    assert "<x>" not in page
    # A real dataset keeps its link.
    assert 'href="/admin/keys/usagerecord/datasets/orders/"' in page


@pytest.mark.parametrize("slug", ODD_SLUGS)
def test_per_dataset_page_of_any_slug_is_never_a_server_error(admin_client, orders, slug):
    _record(slug)
    url = f"/admin/keys/usagerecord/datasets/{quote(slug, safe='')}/"
    response = admin_client.get(url, follow=True)
    # A slug outside the URL pattern has no page of its own (a redirect or 404), never a 500.
    assert response.status_code in (200, 404)
    if not response.redirect_chain and response.status_code == 200:
        assert html.escape(_stored(slug)) in response.content.decode()


def test_slug_planted_through_the_api_keeps_both_pages_working(admin_client, orders, issue):
    client = bearer(issue(all_datasets=True, rate="100/m"))
    for path in ("%3Cx%3E", "a%20b", quote("é€"), "Zz-9", "y" * 300):
        assert client.get(f"/api/v1/datasets/{path}/rows/").status_code == 404
    overview = admin_client.get("/admin/keys/usagerecord/datasets/")
    assert overview.status_code == 200
    page = overview.content.decode()
    assert "&lt;x&gt;" in page and "a b" in page and "é€" in page and "y" * 40 in page
    # A slug the URL pattern accepts links to its own page, which answers.
    assert 'href="/admin/keys/usagerecord/datasets/Zz-9/"' in page
    detail = admin_client.get("/admin/keys/usagerecord/datasets/Zz-9/")
    assert detail.status_code == 200
    assert "<strong>1</strong> requests in total" in detail.content.decode()


def test_usage_per_dataset_shows_calls_refused_without_a_valid_key(admin_client, orders, issue):
    Client().get("/api/v1/datasets/")
    Client().get("/api/v1/datasets/orders/")
    bearer("gw_AAAAAAAAAAAA_" + "B" * 40).get("/api/v1/datasets/")
    bearer("not-a-key").get("/api/v1/datasets/")
    old = timezone.now().date() - dt.timedelta(days=3)
    RejectedCalls.objects.create(day=old, reason="revoked", count=7)
    page = admin_client.get("/admin/keys/usagerecord/datasets/").content.decode()
    assert "Calls without a valid key" in page
    today = f"<td>{timezone.now().date():%Y-%m-%d}</td>"
    assert today in page
    row = page[page.index(today) :].split("</tr>")[0]
    # Columns: day, no key, malformed, unknown, revoked, expired, total.
    assert [cell.split("<")[0] for cell in row.split("<td>")[2:]] == [
        "2",
        "1",
        "1",
        "0",
        "0",
        "4",
    ]
    assert f"<td>{old:%Y-%m-%d}</td>" in page
