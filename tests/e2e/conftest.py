"""A real browser (Debian's Chromium, driven by Playwright) on a live Gateway server.

Locally a missing browser or Playwright skips these tests with the reason; under CI=true it
fails them. Screenshots for the docs are written only with GATEWAY_SCREENSHOTS=1.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
# Every wait is bounded: a page that does not answer fails the test instead of hanging it.
TIMEOUT_MS = 5_000
NAVIGATION_TIMEOUT_MS = 15_000

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "correct-horse-battery-staple"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}, and CI=true forbids skipping.")
    pytest.skip(reason)


@pytest.fixture
def playwright_api():
    """Playwright's sync API module (skipped locally, failed under CI, when it is missing)."""
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError as error:
        _unavailable(f"Playwright is not installed ({error}): install the dev extra")


@pytest.fixture
def browser(playwright_api, monkeypatch) -> Iterator:
    """Headless Chromium from /usr/bin (a browser downloaded by Playwright does not work here)."""
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    # Playwright's sync API keeps an event loop in this thread; Django refuses ORM calls from a
    # thread with an event loop unless told the caller is synchronous, which tests are.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()
            # While Playwright's loop runs, Django keeps this thread's connections per context
            # (asgiref), apart from the ones the database fixtures close: close them here, or
            # PostgreSQL refuses to drop the test database at the end of the session.
            connections.close_all()


@pytest.fixture
def page(browser, live_server, playwright_api) -> Iterator:
    """A page on the live server at 1280x800; any request to another host fails the test."""
    context = browser.new_context(
        base_url=live_server.url,
        viewport=VIEWPORT,
        color_scheme="light",
        locale="en-US",
        timezone_id="UTC",
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    playwright_api.expect.set_options(timeout=TIMEOUT_MS)
    origin = urlsplit(live_server.url).netloc
    foreign: list[str] = []

    def outside(route) -> None:
        foreign.append(route.request.url)
        route.abort()

    # Gateway's pages must work without internet access: nothing may be loaded from elsewhere.
    context.route(lambda url: urlsplit(url).netloc != origin, outside)
    try:
        yield context.new_page()
    finally:
        context.close()
    assert not foreign, f"Requests to other hosts: {foreign}"


@pytest.fixture
def expect(playwright_api):
    """Playwright's auto-waiting assertions (bounded by TIMEOUT_MS)."""
    return playwright_api.expect


@pytest.fixture
def admin_user(transactional_db):
    """A superuser who logs in to /admin/ with ADMIN_USERNAME and ADMIN_PASSWORD."""
    return get_user_model().objects.create_superuser(
        ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD
    )


def admin_login(page) -> None:
    """Log in to /admin/ through the login form, as a person would."""
    page.goto("/admin/")
    page.fill("#id_username", ADMIN_USERNAME)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def screenshot(page, name: str, element=None) -> None:
    """Save docs/images/<name> (the viewport, or one element) when GATEWAY_SCREENSHOTS=1.

    Normal test runs leave the committed images alone.
    """
    if os.environ.get("GATEWAY_SCREENSHOTS") != "1":
        return
    IMAGES.mkdir(parents=True, exist_ok=True)
    target = element if element is not None else page
    target.screenshot(path=str(IMAGES / name), animations="disabled", caret="hide")
