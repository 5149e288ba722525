"""The admin's Connect to ChatGPT page."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client

from tests.datasets.schema.conftest import PUBLIC_URL

pytestmark = pytest.mark.django_db

SEED_Q2 = (
    "/api/v1/datasets/sales/aggregate/?order_date__gte=2025-04-01&order_date__lte=2025-06-30"
    "&group_by=product&metrics=sum:revenue&ordering=-sum_revenue"
)


def _page(client: Client, url: str = "/admin/connect/") -> str:
    response = client.get(url)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_page_is_for_staff_only(db):
    response = Client().get("/admin/connect/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_admin_index_links_to_the_page(staff):
    assert 'href="/admin/connect/"' in staff.get("/admin/").content.decode()


def test_page_shows_url_auth_instructions_privacy_and_report(staff, demo, catalog, public_url):
    catalog(2)
    page = _page(staff)
    assert f"{PUBLIC_URL}/openapi.json" in page
    assert "Auth Type: Bearer" in page
    assert f"{PUBLIC_URL}/privacy/" in page
    for slug in ("sales", "d01", "d02"):
        assert f"- {slug} (" in page  # named in the GPT instructions
    assert "Covers 2023-2025" in page
    assert "The schema meets every import rule." in page
    assert "not https" not in page


def test_custom_header_auth_is_explained(staff, demo, public_url, settings):
    settings.GATEWAY_SCHEMA_AUTH = "header"
    page = _page(staff)
    assert "Auth Type: Custom" in page and "Custom Header Name: X-API-Key" in page


def test_dataset_picker_limits_the_schema_url_and_instructions(staff, catalog, public_url):
    catalog(3)
    page = _page(staff, "/admin/connect/?datasets=d01&datasets=d03")
    assert f"{PUBLIC_URL}/openapi.json?datasets=d01,d03" in page
    assert "- d01 (" in page and "- d03 (" in page and "- d02 (" not in page


def test_too_many_datasets_are_reported_with_the_fix(staff, catalog, public_url):
    catalog(10)
    page = _page(staff)
    assert "32 operations" in page and "?datasets=" in page
    assert "The schema meets every import rule." not in page


def test_server_that_is_not_https_is_warned(staff, db, settings):
    settings.GATEWAY_PUBLIC_URL = None
    page = _page(staff)
    assert 'id="server-warning"' in page
    assert "http://testserver is not https" in page


def test_private_schema_offers_the_document_to_paste(staff, demo, public_url, settings):
    settings.GATEWAY_SCHEMA_PUBLIC = False
    page = _page(staff)
    document = re.search(r'<textarea id="schema-document"[^>]*>(.*?)</textarea>', page, re.S)
    assert json.loads(document.group(1))["paths"]["/api/v1/datasets/sales/aggregate/"]


def test_example_call_on_the_page_answers_the_question(staff, demo, public_url, raw_key):
    page = _page(staff)
    assert f'data-url="{SEED_Q2}"' in page
    answer = Client().get(SEED_Q2, HTTP_AUTHORIZATION=f"Bearer {raw_key()}")
    assert answer.status_code == 200, answer.content
    results = answer.json()["results"]
    assert {row["product"] for row in results} <= {f"Product {letter}" for letter in "ABCDEFGH"}
    totals = [row["sum_revenue"] for row in results]
    assert totals == sorted(totals, reverse=True) and totals[0] > 0


def test_every_example_call_on_the_page_succeeds(staff, demo, public_url, raw_key):
    key = raw_key()
    urls = re.findall(r'data-url="([^"]+)"', _page(staff))
    assert len(urls) >= 4
    for url in urls:
        response = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 200, (url, response.content)


def test_questions_are_natural_and_instructions_say_what_to_sum(staff, demo, public_url):
    page = _page(staff)
    assert "&ldquo;Total revenue by product in 2025 Q2&rdquo;" in _raw_page(staff)
    assert "Show me" not in page
    assert "Sum: revenue, units. Average: unit_price." in page
    assert f"- Example: Total revenue by product in 2025 Q2 -> GET {SEED_Q2}" in page


def _raw_page(client: Client) -> str:
    return client.get("/admin/connect/").content.decode()


def _staff_with(*codenames: str) -> Client:
    """A staff user (not a superuser) with exactly these permissions."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create(username="staff-" + "-".join(codenames), is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("public", [True, False])
def test_staff_without_view_dataset_sees_no_dataset(demo, catalog, public_url, settings, public):
    settings.GATEWAY_SCHEMA_PUBLIC = public
    catalog(2)
    staff = _staff_with("view_apikey", "view_source")
    for url in ("/admin/connect/", "/admin/connect/?datasets=d01"):
        page = _page(staff, url)
        for slug in ("sales", "d01", "d02"):
            assert f"/api/v1/datasets/{slug}/rows/" not in page
            assert f"- {slug} (" not in page and f'value="{slug}"' not in page
        assert "Dataset d01" not in page and "Covers 2023-2025" not in page
        assert "order_date" not in page and "seen_at" not in page  # no column of any dataset
        assert "data-url=" not in page  # no example to run
        assert 'id="datasets-hidden"' in page  # and the page says why


def test_view_dataset_permission_shows_the_datasets_and_their_examples(demo, public_url):
    page = _page(_staff_with("view_dataset"))
    assert 'id="datasets-hidden"' not in page
    assert "- sales (" in page and f'data-url="{SEED_Q2}"' in page


def test_keys_are_issued_under_api_keys_as_the_admin_calls_them(staff, demo, public_url):
    page = _raw_page(staff)
    assert 'under <a href="/admin/keys/apikey/">API keys</a>' in page
    assert "<em>Keys</em>" not in page


def test_a_fix_made_when_serving_names_the_operation_and_what_was_fixed(
    staff, demo, public_url, monkeypatch
):
    from dataclasses import replace

    from access import connect
    from datasets.schema.rules import Finding

    real = connect.schema_cached
    fixed = Finding(
        "description_length",
        "/paths//api/v1/datasets//get/description",
        "The description has 340 characters; the GPT Builder accepts under 300. Shortened.",
        fixed=True,
    )

    def with_a_fix(**options):
        built = real(**options)
        return replace(built, findings=(*built.findings, fixed))

    monkeypatch.setattr(connect, "schema_cached", with_a_fix)
    page = re.sub(r"<[^>]+>", "", _page(staff))
    assert "Fixed by Gateway in the schema it serves, in 1 place:" in page
    assert (
        "GET /api/v1/datasets/: The description has 340 characters; "
        "the GPT Builder accepts under 300. Shortened."
    ) in page
    assert "/paths/" not in page and "fixed when served" not in page


def test_the_mcp_section_gives_the_url_and_points_at_the_mcp_guide(staff, demo, public_url):
    page = _page(staff)
    assert f'<code class="url" id="mcp-url">{PUBLIC_URL}/mcp</code>' in page
    assert "docs/mcp.md" in page


def test_oauth_schema_shows_the_values_to_paste_and_the_gpt_actions_client_page(
    staff, demo, public_url, settings
):
    settings.GATEWAY_SCHEMA_AUTH = "oauth"
    page = _page(staff)
    assert f'id="oauth-authorization-url">{PUBLIC_URL}/oauth/authorize/</code>' in page
    assert f'id="oauth-token-url">{PUBLIC_URL}/oauth/token/</code>' in page
    assert '<code id="oauth-scope">datasets</code>' in page
    assert "Token Exchange Method</th><td>Default (POST request)" in page
    assert 'href="/admin/accounts/gptactionsclient/add/"' in page
    assert "https://chatgpt.com/aip/g-<GPT id>/oauth/callback" in page
    assert "paste a Gateway key" not in page
    # The page's own links work for the admin who follows them.
    assert staff.get("/admin/accounts/gptactionsclient/add/").status_code == 200


def test_api_key_schemas_show_no_oauth_values(staff, demo, public_url):
    page = _page(staff)
    assert 'id="oauth-values"' not in page and "paste a Gateway key" in page


@pytest.mark.parametrize(
    "location, where",
    [
        ("/paths//api/v1/datasets//get/description", "GET /api/v1/datasets/"),
        ("/paths//api/v1/datasets/get/rows//get/parameters/3", "GET /api/v1/datasets/get/rows/"),
        (
            "/paths//api/v1/datasets/sales/rows/{pk}//get/x-openai-isConsequential",
            "GET /api/v1/datasets/sales/rows/{pk}/",
        ),
        ("/servers/0/url", "/servers/0/url"),
    ],
)
def test_a_finding_is_placed_by_its_operation(location, where):
    from access.connect import _where

    assert _where(location) == where


def test_the_mcp_section_has_a_claude_code_command_for_the_chosen_key(staff, demo, public_url):
    from keys.services import api_key_issue

    key = api_key_issue(name="Claude", all_datasets=True).key
    page = _page(staff, f"/admin/connect/?key={key.key_id}")
    command = re.search(r'<pre id="mcp-claude-code">(.*?)</pre>', page, re.S).group(1)
    assert command == (
        f"claude mcp add --transport http gateway {PUBLIC_URL}/mcp "
        f'--header "Authorization: Bearer gw_{key.key_id}_…"'
    )
