"""Response bodies of rows and aggregates: JSON cut to the size ChatGPT accepts, and streamed CSV."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from urllib.parse import urlencode

from django.http import HttpResponse, StreamingHttpResponse

from datasets.engine.execute import Groups, Page


def dumps(value) -> str:
    """Compact JSON, as every response body is written."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


ROW_TOO_LARGE = (
    "One row alone is larger than the response limit: choose fewer columns with `fields`."
)
GROUP_TOO_LARGE = (
    "One group alone is larger than the response limit: ask for fewer metrics or group_by keys."
)


def page_url(base: str, path: str, params, *, limit: int, offset: int) -> str:
    """The URL of another page: the same query with limit and offset replaced."""
    query = [
        (name, value)
        for name, values in params.lists()
        for value in values
        if name not in ("limit", "offset")
    ]
    query += [("limit", str(limit)), ("offset", str(offset))] if offset else [("limit", str(limit))]
    return f"{base}{path}?{urlencode(query)}"


def rows_json(
    page: Page, *, base: str, path: str, params, limit: int, offset: int, max_chars: int
) -> HttpResponse | None:
    """The page as JSON under `max_chars` characters, cut at a row boundary; None if one row alone is too large."""
    encoded = [dumps(row) for row in page.rows]
    previous = (
        page_url(base, path, params, limit=limit, offset=max(offset - limit, 0))
        if offset > 0
        else None
    )
    # Room for the envelope: count, both links and the truncated flag, at their longest.
    longest_next = page_url(base, path, params, limit=limit, offset=offset + len(encoded))
    envelope = (
        len(
            dumps(
                {
                    "count": page.count,
                    "next": longest_next,
                    "previous": previous,
                    "truncated": False,
                    "results": [],
                }
            )
        )
        + 8
    )
    kept = fitting(encoded, max_chars - envelope)
    truncated = kept < len(encoded)
    if truncated and kept == 0:
        return None
    end = offset + kept
    next_url = page_url(base, path, params, limit=limit, offset=end) if end < page.count else None
    head = dumps(
        {"count": page.count, "next": next_url, "previous": previous, "truncated": truncated}
    )
    body = head[:-1] + ',"results":[' + ",".join(encoded[:kept]) + "]}"
    return HttpResponse(body, content_type="application/json")


def fitting(encoded: list[str], budget: int) -> int:
    """How many of the encoded items fit in `budget` characters, comma-separated."""
    kept, used = 0, 0
    for text in encoded:
        if used + len(text) + 1 > budget:
            break
        used += len(text) + 1
        kept += 1
    return kept


def aggregate_json(
    groups: Groups, *, base: str, path: str, params, limit: int, offset: int, max_chars: int
) -> HttpResponse | None:
    """Groups as JSON under `max_chars`: `count` of all groups, `next` when limit or size cut them.

    `truncated` says the size limit cut them (`next` continues exactly there); None if one group
    alone is too large.
    """
    encoded = [dumps(group) for group in groups.results]
    longest_next = page_url(base, path, params, limit=limit, offset=offset + len(encoded))
    envelope = (
        len(dumps({"count": groups.count, "next": longest_next, "truncated": False, "results": []}))
        + 8
    )
    kept = fitting(encoded, max_chars - envelope)
    truncated = kept < len(encoded)
    if truncated and kept == 0:
        return None
    end = offset + kept
    next_url = page_url(base, path, params, limit=limit, offset=end) if end < groups.count else None
    head = dumps({"count": groups.count, "next": next_url, "truncated": truncated})
    body = head[:-1] + ',"results":[' + ",".join(encoded[:kept]) + "]}"
    return HttpResponse(body, content_type="application/json")


class _Echo:
    def write(self, value: str) -> str:
        return value


# A cell starting with one of these is run as a formula by spreadsheets (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(value) -> object:
    """A value as a CSV cell: text that a spreadsheet would run as a formula gets a leading '.

    Numbers stay numbers: a negative number, or text that is only a number, is not a formula.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        if _PLAIN_NUMBER.fullmatch(value):
            return value
        return "'" + value
    return value


def rows_csv(page: Page, fields: list[str], filename: str) -> StreamingHttpResponse:
    """The page as CSV, written row by row as the response is sent, formula cells neutralised."""

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield "\ufeff" + writer.writerow(fields)
        for row in page.rows:
            yield writer.writerow([csv_cell(row[name]) for name in fields])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response
