"""The one error shape of the API: {"error": {"status", "code", "message"}}, for every status."""

from __future__ import annotations

import logging
import math

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions
from rest_framework.response import Response

from datasets.engine.errors import QueryError, SourceUnavailable

logger = logging.getLogger("gateway")

_DRF_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ApiError(exceptions.APIException):
    """An error with a chosen status, stable code, message and optional Retry-After."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status_code = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def error_body(status: int, code: str, message: str) -> dict:
    """The JSON body of every error response."""
    return {"error": {"status": status, "code": code, "message": message}}


def _headers(retry_after: int | None) -> dict[str, str]:
    return {"Retry-After": str(retry_after)} if retry_after is not None else {}


def error_response(
    status: int, code: str, message: str, *, retry_after: int | None = None
) -> Response:
    """A DRF response in the error shape."""
    return Response(error_body(status, code, message), status=status, headers=_headers(retry_after))


def error_json(
    status: int, code: str, message: str, *, retry_after: int | None = None
) -> JsonResponse:
    """A plain Django response in the error shape, for code outside DRF views."""
    response = JsonResponse(error_body(status, code, message), status=status)
    for name, value in _headers(retry_after).items():
        response[name] = value
    return response


def _message(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_message(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_message(item) for item in detail)
    return str(detail)


def exception_handler(exc: Exception, context: dict) -> Response:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: map every exception to the error shape."""
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, exc.message, retry_after=exc.retry_after)
    if isinstance(exc, QueryError):
        return error_response(exc.status, exc.code, exc.message)
    if isinstance(exc, SourceUnavailable):
        return error_response(503, exc.code, exc.message, retry_after=exc.retry_after)
    if isinstance(exc, Ratelimited):
        return error_response(
            429, "rate_limited", "Too many requests for this key: wait and retry.", retry_after=60
        )
    if isinstance(exc, Http404):
        return error_response(
            404, "not_found", "Not found. List the datasets at /api/v1/datasets/."
        )
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        response = error_response(401, "unauthorized", _message(exc.detail))
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            response["WWW-Authenticate"] = auth_header
        return response
    if isinstance(exc, (PermissionDenied, exceptions.PermissionDenied)):
        # Never 403: a dataset outside the key's scope must not reveal that it exists.
        return error_response(
            404, "not_found", "Not found. List the datasets at /api/v1/datasets/."
        )
    if isinstance(exc, exceptions.Throttled):
        # A throttle's own code (rate_limited, quota_exceeded) when it gave one.
        code = exc.get_codes()
        if not isinstance(code, str) or code == exceptions.Throttled.default_code:
            code = "rate_limited"
        return error_response(
            429,
            code,
            _message(exc.detail),
            retry_after=math.ceil(exc.wait or 60),  # type: ignore[attr-defined]
        )
    if isinstance(exc, exceptions.APIException):
        status = exc.status_code
        code = _DRF_CODES.get(
            status, exc.default_code if isinstance(exc.default_code, str) else "error"
        )
        return error_response(status, code, _message(exc.detail))
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
    return error_response(
        500, "server_error", "The server failed to answer this request; it has been logged."
    )


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler404(request, exception=None):
    """URL not found: the error shape under /api/, Django's page elsewhere."""
    if _is_api(request):
        return error_json(
            404,
            "not_found",
            f"No endpoint at {request.path}. List the datasets at /api/v1/datasets/.",
        )
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    """Unhandled error outside DRF: the error shape under /api/."""
    if _is_api(request):
        return error_json(
            500, "server_error", "The server failed to answer this request; it has been logged."
        )
    from django.views.defaults import server_error

    return server_error(request)
