"""docs/admin.md lists the admin index's sections and pages as the admin shows them, in order."""

from __future__ import annotations

import re

import pytest

from tests.docs.samples import DOCS

pytestmark = pytest.mark.django_db

INTRO = "The admin index has these sections, in this order:\n\n"


def _documented() -> list[tuple[str, list[str]]]:
    """(section, pages) of each bullet of the list: the section in bold, its pages in italics."""
    text = (DOCS / "admin.md").read_text()
    listing = text[text.index(INTRO) + len(INTRO) :].split("\n\n", 1)[0]
    bullets = re.split(r"^- ", listing, flags=re.MULTILINE)[1:]
    return [
        (
            re.match(r"\*\*(.+?)\*\*", bullet).group(1),
            re.findall(r"(?<!\*)\*([^*]+)\*(?!\*)", bullet),
        )
        for bullet in bullets
    ]


def test_the_admin_index_is_listed_as_the_admin_shows_it(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    shown = [("Connect to ChatGPT", [])] + [
        (str(app["name"]), [str(model["name"]) for model in app["models"]])
        for app in response.context["app_list"]
    ]
    # Connect to ChatGPT comes first: the index template puts it before the apps.
    first_app = response.context["app_list"][0]["app_label"]
    content = response.content.decode()
    assert content.index('id="connect-module"') < content.index(f"app-{first_app} module")

    assert _documented() == shown
