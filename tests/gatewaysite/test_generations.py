"""Per-process caches drop their values when the data behind them changes."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from gatewaysite import generations
from gatewaysite.generations import ProcessCache, bump


@pytest.fixture
def loads():
    return []


def _loader(loads, value):
    def load():
        loads.append(value)
        return value

    return load


def test_value_is_loaded_once_while_the_generation_holds(loads):
    values = ProcessCache("test-a")
    assert values.get("k", _loader(loads, 1)) == 1
    assert values.get("k", _loader(loads, 2)) == 1
    assert loads == [1]


def test_a_bump_in_this_process_drops_the_value_at_once(loads):
    values = ProcessCache("test-b", recheck_seconds=3600)
    values.get("k", _loader(loads, 1))
    bump("test-b")
    assert values.get("k", _loader(loads, 2)) == 2


def test_a_bump_from_another_process_is_seen_at_the_next_check(loads):
    values = ProcessCache("test-c")
    values.get("k", _loader(loads, 1))
    # Another process bumps: only the shared generation moves.
    cache.set("gateway:generation:test-c", "elsewhere", timeout=None)
    assert values.get("k", _loader(loads, 2)) == 2


def test_with_a_recheck_interval_the_shared_generation_is_read_at_most_that_often(
    loads, monkeypatch
):
    clock = [1000.0]
    monkeypatch.setattr(generations.time, "monotonic", lambda: clock[0])
    values = ProcessCache("test-d", recheck_seconds=1.0)
    values.get("k", _loader(loads, 1))
    cache.set("gateway:generation:test-d", "elsewhere", timeout=None)
    assert values.get("k", _loader(loads, 2)) == 1
    clock[0] += 1.5
    assert values.get("k", _loader(loads, 3)) == 3
