"""Fixtures for fuzzing the API from its own OpenAPI schema: a live server, demo data, a real key."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from datasets.demo import demo_load
from keys.services import api_key_issue

# Enough rows for several pages, grouping and every enum value; small enough to load in a second.
FUZZ_ROWS = 2000


def require_module(name: str) -> ModuleType:
    """Import a test tool; without it skip the module locally, fail it under CI=true."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        reason = f"{name} is not installed ({error}): install the dev extra"
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError(f"{reason}, and CI=true forbids skipping.") from error
        pytest.skip(reason, allow_module_level=True)


@pytest.fixture
def fuzz_key(transactional_db) -> str:
    """A key for every dataset of a freshly loaded demo catalog, with a rate no fuzzer reaches."""
    demo_load(rows=FUZZ_ROWS)
    return api_key_issue(name="fuzz", all_datasets=True, rate="1000000/m").raw_key
