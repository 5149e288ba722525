"""The Connect to ChatGPT page in a browser: opened for one key, its Run button answers with that
key; it fits a 1280 px window; its import checklist reads in light and dark themes. And ReDoc asks
nothing of another host."""

from __future__ import annotations

import re

import pytest

from datasets.demo import demo_load
from keys.services import api_key_issue
from tests.datasets.schema.conftest import PUBLIC_URL, catalog_dataset
from tests.e2e.conftest import admin_login, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

# Blocked by the Content-Security-Policy, a request to another host never reaches the network
# (where the page fixture's route would see it): the page's own violation events tell of it.
RECORD_VIOLATIONS = """
window.gatewayViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.gatewayViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

# The "OK" text's colour and the colour behind it (the first ancestor with a background).
OK_COLOURS = """
element => {
  const colour = getComputedStyle(element).color;
  for (let node = element; node; node = node.parentElement) {
    const background = getComputedStyle(node).backgroundColor;
    if (!/^rgba\\(.*, 0\\)$/.test(background) && background !== "transparent") {
      return [colour, background];
    }
  }
  return [colour, "rgb(255, 255, 255)"];
}
"""


def _luminance(colour: str) -> float:
    red, green, blue = (int(part) / 255 for part in re.findall(r"\d+", colour)[:3])

    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.03928 else ((channel + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(foreground: str, background: str) -> float:
    """The WCAG contrast ratio of two CSS rgb() colours (1 to 21)."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_contrast_of_known_colours():
    assert contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21)
    # The checklist's former "OK": the admin's pale success background as text on white.
    assert contrast("rgb(221, 255, 221)", "rgb(255, 255, 255)") < 1.5


@pytest.fixture
def sales_key(admin_user, settings):
    """The demo dataset, two datasets the key cannot read, and a key for `sales` only."""
    settings.GATEWAY_PUBLIC_URL = PUBLIC_URL  # what the page shows; the calls stay on this server
    demo_load(rows=300)
    catalog_dataset("d01")
    catalog_dataset("d02")
    return api_key_issue(name="Sales GPT", datasets=["sales"])


def _overflow(page) -> int:
    """How many pixels the page is wider than the window (0 or less: no sideways scroll)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_the_page_for_a_key_chooses_its_datasets_and_runs_its_calls(page, expect, sales_key):
    admin_login(page)
    # As the key's page links to it.
    page.goto(f"/admin/keys/apikey/{sales_key.key.pk}/change/")
    page.get_by_role("link", name="Connect to ChatGPT").click()
    page.wait_for_url(f"**/admin/connect/?key={sales_key.key.key_id}")

    checked = page.locator("ul.datasets input:checked")
    expect(checked).to_have_count(1)
    expect(checked).to_have_value("sales")
    expect(page.locator("#schema-url")).to_have_text(f"{PUBLIC_URL}/openapi.json?datasets=sales")
    assert page.evaluate("window.innerWidth") == 1280
    assert _overflow(page) <= 0
    screenshot(page, "admin-connect-key.png")

    page.fill("#run-key", sales_key.raw_key)
    runs = page.locator("#step-examples button.run")
    assert runs.count() >= 3
    for index in range(runs.count()):
        runs.nth(index).click()
        output = page.locator(f"#{runs.nth(index).get_attribute('data-output')}")
        expect(output).to_contain_text("HTTP 200")
    expect(page.locator("#step-examples")).not_to_contain_text("HTTP 404")

    # Changing the datasets keeps the key in the address.
    page.locator("ul.datasets input[value=d01]").check()
    page.get_by_role("button", name="Update").click()
    page.wait_for_url(re.compile(r"key=" + sales_key.key.key_id))
    expect(page.locator("#outside-key")).to_contain_text("cannot read d01")


def test_the_page_fits_1280_pixels_with_every_section(page, sales_key, settings):
    settings.GATEWAY_SCHEMA_AUTH = "oauth"  # the widest authentication section
    admin_login(page)
    for path in ["/admin/connect/", f"/admin/connect/?key={sales_key.key.key_id}"]:
        page.goto(path)
        assert _overflow(page) <= 0, path


@pytest.mark.parametrize("theme", ["light", "dark-switch", "dark-system"])
def test_the_import_checklist_reads_in_each_theme(page, expect, sales_key, theme):
    if theme == "dark-system":
        page.emulate_media(color_scheme="dark")
    admin_login(page)
    if theme == "dark-switch":
        page.evaluate("localStorage.setItem('theme', 'dark')")  # the admin's theme switch
    page.goto("/admin/connect/")
    dark = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--body-bg').trim()"
    )
    assert (dark == "#121212") == (theme != "light"), dark
    oks = page.locator("#step-rules table.rules span.ok")
    assert oks.count() >= 10
    expect(oks.first).to_have_text("OK")
    for index in range(oks.count()):
        colour, background = oks.nth(index).evaluate(OK_COLOURS)
        assert contrast(colour, background) >= 4.5, (theme, colour, background)
    # Rows are not bulleted lists.
    for selector in ["ul.datasets li", "ul.calls li"]:
        styles = page.locator(f"#content-main {selector}").evaluate_all(
            "items => items.map(item => getComputedStyle(item).listStyleType)"
        )
        assert styles and set(styles) == {"none"}, (selector, styles)
    if theme == "dark-switch":
        page.locator("#step-rules").scroll_into_view_if_needed()
        screenshot(page, "admin-connect-rules-dark.png", page.locator("#step-rules"))


def test_redoc_asks_nothing_of_another_host(page, expect, transactional_db):
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto("/redoc/")
    expect(page.locator("[data-section-id='operation/list_datasets']")).to_be_attached()
    expect(page.get_by_role("link", name="API docs by Redocly")).to_be_attached()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.gatewayViolations") == []
    origin = page.evaluate("location.origin")
    loaded = page.evaluate(
        "performance.getEntriesByType('resource').map(entry => entry.name)"
        ".concat([...document.images].map(image => image.src))"
    )
    assert [url for url in loaded if not url.startswith((origin, "data:", "blob:"))] == []
