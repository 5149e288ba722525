"""Every curl example of docs/api.md runs against the demo, and every answer shown is the demo's.

`pytest tests/docs --update-docs` rewrites the answer samples from the demo's answers
(tests/docs/samples.py says how they are laid out and trimmed).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.docs.samples import DOCS, Example, examples, sample_check, sample_text

pytestmark = pytest.mark.django_db

DOC = DOCS / "api.md"
EXAMPLES = examples(DOC)


def test_the_document_has_examples_and_samples():
    assert len(EXAMPLES) >= 10
    assert sum(example.sample is not None for example in EXAMPLES) >= 3


@pytest.fixture
def _isolated():
    """The demo lives for the whole module: no per-test data directory here."""
    yield


def _get(key: str, url: str):
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    # The host and port of the examples, so that `next` links read as in the docs.
    client = Client(headers={"Authorization": f"Bearer {key}"}, HTTP_HOST=parts.netloc)
    return client.get(target)


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.url[22:] for example in EXAMPLES])
def test_example_answers(demo, update_docs, example: Example):
    response = _get(demo, example.url)
    if example.sample is not None:
        body = response.json()
        assert response.status_code == body.get("error", {}).get("status", 200), body
        sample_check(example, body, update=update_docs)
        return
    assert response.status_code == 200, response.content[:500]
    if response["Content-Type"].startswith("text/csv"):
        assert b"".join(response.streaming_content).count(b"\n") > 1
        return
    body = response.json()
    if "results" in body:
        assert body["results"], f"{example.url} answered no rows on the demo data"


def test_a_sample_keeps_the_first_results_then_an_ellipsis():
    answer = {"count": 5, "results": [{"n": n} for n in range(5)]}
    assert sample_text(answer) == ('{"count": 5, "results": [{"n": 0}, {"n": 1}, {"n": 2}, "…"]}\n')
    wide = {"count": 1, "results": [{"text": "x" * 100}]}
    assert sample_text(wide) == (
        '{\n  "count": 1,\n  "results": [\n    {\n      "text": "'
        + "x" * 100
        + '"\n    }\n  ]\n}\n'
    )


def test_a_wrong_sample_fails_with_a_diff_and_update_rewrites_it(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```sh\ncurl http://127.0.0.1:8000/api/v1/datasets/\n```\n\n"
        '```json\n{"count": 2}\n```\n\n'
        "```sh\ncurl http://127.0.0.1:8000/api/v1/datasets/sales/\n```\n"
        '```json\n{"slug": "old"}\n```\n'
    )
    first, second = examples(doc)
    with pytest.raises(AssertionError, match=r'-\{"count": 2\}\n\+\{"count": 1\}'):
        sample_check(first, {"count": 1}, update=False)
    sample_check(first, {"count": 1, "results": ["a", "b", "c", "d"]}, update=True)
    sample_check(second, {"slug": "sales"}, update=True)
    assert doc.read_text() == (
        "```sh\ncurl http://127.0.0.1:8000/api/v1/datasets/\n```\n\n"
        '```json\n{"count": 1, "results": ["a", "b", "c", "…"]}\n```\n\n'
        "```sh\ncurl http://127.0.0.1:8000/api/v1/datasets/sales/\n```\n"
        '```json\n{"slug": "sales"}\n```\n'
    )
    sample_check(examples(doc)[1], {"slug": "sales"}, update=False)
