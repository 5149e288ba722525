"""While the shared cache is down, each warning is logged once a minute, not once a request."""

from __future__ import annotations

import logging

from gatewaysite import cache_outage


def test_the_same_warning_is_logged_once_a_minute(caplog, monkeypatch):
    clock = [5000.0]
    monkeypatch.setattr(cache_outage.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(cache_outage, "_last", {})
    with caplog.at_level(logging.WARNING, logger="gateway"):
        for _ in range(100):
            cache_outage.warn_cache_down("Shared cache unavailable: %s", "catalog")
        cache_outage.warn_cache_down("Another part is down")
        clock[0] += 61
        cache_outage.warn_cache_down("Shared cache unavailable: %s", "catalog")
    assert [record.getMessage() for record in caplog.records] == [
        "Shared cache unavailable: catalog",
        "Another part is down",
        "Shared cache unavailable: catalog",
    ]
