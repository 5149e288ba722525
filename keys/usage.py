"""Usage recording of every API request."""

from __future__ import annotations


class UsageMiddleware:
    """Placeholder until keys land: records nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
