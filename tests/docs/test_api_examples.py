"""Every curl example of docs/api.md runs against the demo data and gets a useful answer."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _examples() -> list[str]:
    """The URL of every curl command in the document's sh blocks."""
    urls = []
    for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.DOTALL):
        for line in block.splitlines():
            if line.startswith("curl "):
                urls.append(
                    next(
                        word
                        for word in shlex.split(line)
                        if word.startswith("http://127.0.0.1:8000/")
                    )
                )
    return urls


EXAMPLES = _examples()


def test_the_document_has_examples():
    assert len(EXAMPLES) >= 10


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.conf import settings

    from datasets.demo import demo_load
    from keys.services import api_key_issue

    data_dir = settings.GATEWAY_DATA_DIR
    settings.GATEWAY_DATA_DIR = tmp_path_factory.mktemp("demo")
    with django_db_blocker.unblock():
        dataset, _ = demo_load(rows=3000)
        issued = api_key_issue(name="docs", all_datasets=True, rate="100000/m")
        yield issued.raw_key
        issued.key.delete()
        dataset.delete()
    settings.GATEWAY_DATA_DIR = data_dir


@pytest.fixture
def _isolated():
    """The demo lives for the whole module: no per-test data directory here."""
    yield


@pytest.mark.parametrize("url", EXAMPLES)
def test_example_answers(demo, url):
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    response = Client(headers={"Authorization": f"Bearer {demo}"}).get(target)
    assert response.status_code == 200, response.content[:500]
    if response["Content-Type"].startswith("text/csv"):
        assert b"".join(response.streaming_content).count(b"\n") > 1
        return
    body = response.json()
    if "results" in body:
        assert body["results"], f"{url} answered no rows on the demo data"
