"""A person signs in and allows a GPT in Chromium: the consent form reaches the GPT's callback
(its page's Content-Security-Policy lets the form go there), and the code works."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from django.contrib.auth.models import User

from accounts.models import AccessGrant
from accounts.services import gpt_actions_client_create
from tests.e2e.conftest import NAVIGATION_TIMEOUT_MS, TIMEOUT_MS, VIEWPORT
from tests.keys.conftest import make_dataset

PASSWORD = "a-long-Pass-phrase-42"
CALLBACK = "https://chatgpt.com/aip/g-0a1b2c3d4e5f/oauth/callback"


@pytest.fixture
def gpt(transactional_db):
    orders = make_dataset("orders")
    user = User.objects.create_user("eve", password=PASSWORD)
    AccessGrant.objects.create(user=user).datasets.set([orders])
    return gpt_actions_client_create(name="Sales GPT")


def test_person_signs_in_allows_the_gpt_and_the_gpt_reads_with_the_code(
    browser, live_server, expect, gpt
):
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    reached: list[str] = []
    origin = urlsplit(live_server.url).netloc

    def callback(route) -> None:
        reached.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p>GPT callback</p>")

    context.route("https://chatgpt.com/**", callback)
    # Nothing else may be loaded from another host.
    context.route(
        lambda url: urlsplit(url).netloc not in (origin, "chatgpt.com"),
        lambda route: route.abort(),
    )
    page = context.new_page()
    try:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": gpt.application.client_id,
                "redirect_uri": CALLBACK,
                "scope": "datasets",
                "state": "browser-state",
            }
        )
        page.goto(f"/oauth/authorize/?{query}")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.fill("#id_username", "eve")
        page.fill("#id_password", PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Connect Sales GPT?")).to_be_visible()
        expect(page.get_by_text("Orders", exact=True)).to_be_visible()
        page.get_by_role("button", name="Allow").click()
        expect(page.get_by_text("GPT callback")).to_be_visible()
    finally:
        context.close()
    assert len(reached) == 1 and reached[0].startswith(CALLBACK + "?")
    answer = {name: values[0] for name, values in parse_qs(urlsplit(reached[0]).query).items()}
    assert answer["state"] == "browser-state"
    with httpx.Client(base_url=live_server.url, timeout=20) as api:
        token = api.post(
            "/oauth/token/",
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": CALLBACK,
                "client_id": gpt.application.client_id,
                "client_secret": gpt.client_secret,
            },
        )
        assert token.status_code == 200, token.text
        listed = api.get(
            "/api/v1/datasets/",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
    assert listed.status_code == 200, listed.text
    assert [item["slug"] for item in listed.json()["results"]] == ["orders"]
