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


def suggest(name: str, choices: Iterable[str], *, what: str, also: Iterable[str] = ()) -> str:
    """'Did you mean X? Valid Ys: …' for a name that is not among `choices`.

    `also` are `{col}__{lookup}` filters to suggest too, without listing them (see closest_name).
    """
    choices = list(choices)
    close = closest_name(name, choices, filters=also)
    hint = f" Did you mean '{close}'?" if close is not None else ""
    listed = ", ".join(choices) if choices else "none"
    return f"{hint} Valid {what}: {listed}."


def closest_name(
    name: str, candidates: Iterable[str], *, filters: Iterable[str] = ()
) -> str | None:
    """The candidate or `{col}__{lookup}` filter closest to `name`, or None.

    A name without `__` is also compared with each filter's lookup alone, so that `year` (or
    `yaer`) finds `date__year`; a whole candidate wins over a lookup of the same text.
    """
    filters = list(filters)
    # The text compared -> the name it stands for.
    compared = {candidate: candidate for candidate in [*candidates, *filters]}
    if "__" not in name:
        for parameter in filters:
            compared.setdefault(parameter.rpartition("__")[2], parameter)
    close = difflib.get_close_matches(name, list(compared), n=1, cutoff=0.5)
    return compared[close[0]] if close else None


def closest_value(raw: str, choices: Iterable) -> str | None:
    """The published value closest to `raw`, ignoring case ('Rain' -> 'rain'), or None."""
    texts = [value_text(choice) for choice in choices]
    lowered = {text.lower(): text for text in texts}
    if raw.lower() in lowered:
        return lowered[raw.lower()]
    close = difflib.get_close_matches(raw.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[close[0]] if close else None


def invalid_choice(name: str, raw: str, choices: Iterable) -> QueryError:
    """A 400 for a value outside a column's published values: the closest one and all of them."""
    choices = list(choices)
    close = closest_value(raw, choices)
    hint = f" Did you mean '{close}'?" if close is not None else ""
    listed = ", ".join(value_text(choice) for choice in choices)
    return QueryError(
        "invalid_value",
        f"'{shown(raw)}' is not a value of {name}.{hint} Valid values: {listed}.",
    )


def value_text(value) -> str:
    """A published value as a query would write it (true, not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
