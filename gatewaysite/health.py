"""GET /healthz: is the database and the cache answering?"""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def _cache_ok() -> bool:
    probe = f"healthz:{uuid.uuid4().hex}"
    try:
        cache.set(probe, 1, 5)
        ok = cache.get(probe) == 1
        cache.delete(probe)
        return ok
    except Exception:
        return False


@require_GET
def healthz(request):
    """200 {"status": "ok"} when the database and the cache answer, else 503 naming the failing part."""
    checks = {
        "database": "ok" if _database_ok() else "unavailable",
        "cache": "ok" if _cache_ok() else "unavailable",
    }
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        body = {
            "status": "unavailable",
            **checks,
            "error": {
                "status": 503,
                "code": "unavailable",
                "message": f"Not answering: {', '.join(failing)}.",
            },
        }
        response = JsonResponse(body, status=503)
        response["Retry-After"] = "5"
        return response
    return JsonResponse({"status": "ok", **checks})
