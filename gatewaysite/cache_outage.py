"""Warnings about the shared cache being down: logged once a minute per message, not per request."""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("gateway")
EVERY_SECONDS = 60.0

_last: dict[str, float] = {}
_lock = threading.Lock()


def warn_cache_down(message: str, *args) -> None:
    """Log `message` (a logging format) unless the same message was logged in the last minute."""
    now = time.monotonic()
    with _lock:
        if now - _last.get(message, -EVERY_SECONDS) < EVERY_SECONDS:
            return
        _last[message] = now
    logger.warning(message, *args)
