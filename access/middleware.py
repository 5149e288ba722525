"""Usage of the REST API: every request under /api/ is recorded or counted, whatever its status."""

from __future__ import annotations

import contextlib
import logging
import time

from access.authentication import caller_resolve
from gatewaysite.errors import ApiError
from keys.authentication import VALID, KeyRejected
from keys.usage import record, rejected_count, request_record

logger = logging.getLogger("gateway")


def _rejection(request) -> str | None:
    """Why the request had no valid credential (missing, malformed, ...), None when it had one."""
    if getattr(request, "gateway_auth", None) is None:
        # No API view authenticated it (an unknown URL): resolve its caller the same way.
        with contextlib.suppress(KeyRejected, ApiError):
            caller_resolve(request, door="api")
    status = getattr(request, "gateway_auth", None)
    return None if status == VALID else status


class UsageMiddleware:
    """Records every request under /api/ made with a valid credential (any status: 404 and 429
    too); counts the others per day and reason."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.time()
        began = time.perf_counter()
        response = self.get_response(request)
        duration_ms = (time.perf_counter() - began) * 1000
        try:
            reason = _rejection(request)
            if reason is None:
                record(request_record(request, response, started, duration_ms))
            else:
                rejected_count(reason)
        except Exception:
            # Usage is bookkeeping: it never turns a served answer into an error.
            logger.exception("Usage record failed for %s", request.path)
        return response
