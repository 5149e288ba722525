"""Usage recording of every API request."""

from __future__ import annotations


class UsageMiddleware:
    """Placeholder until keys land: records nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


def annotate(request, *, dataset: str | None = None, operation: str | None = None, rows: int | None = None) -> None:
    """Called by the dataset API views: what the request read, for its usage record.

    `request` is the DRF request (or the Django HttpRequest); operation is one of
    list_datasets, describe_dataset, rows, row, aggregate.
    """
