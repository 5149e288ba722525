"""The `hash` personal-data mode, pinned: digests are checked against literal values and against an
HMAC computed here, independently of datasets.engine.pii, so a broken digest cannot go unseen."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from datasets.engine.pii import digest
from tests.datasets.engine.sales_table import ROWS, get_aggregate, get_rows

SECRET = "pinned-secret-for-digest-tests"


def independent_digest(secret: str, value) -> str:
    """HMAC-SHA256 keyed by 'gateway-pii:' + SECRET_KEY over the value's text, first 16 hex digits."""
    key = b"gateway-pii:" + secret.encode()
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()[:16]


@pytest.fixture
def pinned(settings):
    settings.SECRET_KEY = SECRET


LITERAL_DIGESTS = [
    ("buyer1@example.com", "f6fdabc5ab913650"),
    ("Customer 0", "744cbdbd23f1cf26"),
    ("", "7dfa9834c68fb4ca"),
    ("Zoë", "89ef14d8e2ca6534"),
    # values reach digest() as the API shows them: integers, ISO dates and booleans as text
    (42, "543eb8e585256ac7"),
    ("2024-04-01", "c81bd8fe12fdd985"),
    (True, "4725860788b6b0b2"),
]


@pytest.mark.parametrize(("value", "expected"), LITERAL_DIGESTS)
def test_digest_of_a_known_value_is_the_pinned_literal(pinned, value, expected):
    assert digest(value) == expected
    assert independent_digest(SECRET, value) == expected


def test_digest_depends_on_the_secret_key(settings):
    settings.SECRET_KEY = "another-secret"
    assert digest("buyer1@example.com") == "5233301551fed067"


def test_digest_of_null_is_null(pinned):
    assert digest(None) is None


def test_digest_never_returns_the_value(pinned):
    for value, _ in LITERAL_DIGESTS:
        assert digest(value) != value
        assert digest(value) != str(value)


def test_hashed_rows_carry_the_independent_digest_on_every_backend(sales, pinned):
    rows = get_rows(sales, "fields=id,customer&limit=100")["rows"]
    expected = {row["id"]: independent_digest(SECRET, row["customer"]) for row in ROWS}

    assert {row["id"]: row["customer"] for row in rows} == expected
    raw = {row["customer"] for row in ROWS}
    assert not raw & {row["customer"] for row in rows}


def test_hashed_group_keys_are_the_independent_digests_on_every_backend(sales, pinned):
    result = get_aggregate(sales, "group_by=customer&metrics=count")

    assert {item["customer"] for item in result} == {
        independent_digest(SECRET, f"Customer {i}") for i in range(6)
    }
