"""Errors the query engine raises: a bad query (400) or an unavailable source (503)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class QueryError(Exception):
    """A query a client can fix: `code` is stable, `message` says how to fix it."""

    status = 400

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(QueryError):
    """The row asked for does not exist."""

    status = 404

    def __init__(self, message: str):
        super().__init__("not_found", message)


class SourceUnavailable(Exception):
    """The dataset's database did not answer, or not in time: the client should retry later."""

    def __init__(self, message: str, *, code: str = "source_unavailable", retry_after: int = 5):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def shown(text: str, limit: int = 40) -> str:
    """A client's text as quoted back in a message: cut, so that a huge parameter is not echoed."""
    return text if len(text) <= limit else text[:limit] + "…"


def suggest(name: str, choices: Iterable[str], *, what: str) -> str:
    """'Did you mean X? Valid Ys: …' for a name that is not among `choices`."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    listed = ", ".join(choices) if choices else "none"
    return f"{hint} Valid {what}: {listed}."
