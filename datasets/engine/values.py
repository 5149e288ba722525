"""Parsing of query-string values by column type, with errors a model can act on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from datasets.engine.errors import QueryError

MAX_STRING = 1000
INT64 = 2**63

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}

_EXAMPLES = {
    "string": "any text",
    "integer": "a whole number such as 42",
    "number": "a number such as 19.99",
    "boolean": "true or false",
    "date": "a date as YYYY-MM-DD, such as 2024-04-01",
    "datetime": "a date-time as YYYY-MM-DDTHH:MM:SS, such as 2024-04-01T09:30:00",
}


def _invalid(name: str, raw: str, type_: str) -> QueryError:
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    return QueryError(
        "invalid_value", f"'{shown}' is not a valid value for {name}: expected {_EXAMPLES[type_]}."
    )


def parse_value(raw: str, type_: str, *, name: str):
    """A query-string value as the Python value of a column type."""
    if "\x00" in raw:
        raise QueryError("invalid_value", f"The value for {name} contains a NUL character.")
    if len(raw) > MAX_STRING:
        raise QueryError(
            "invalid_value", f"The value for {name} is longer than {MAX_STRING} characters."
        )
    if not raw.isascii():
        try:
            raw.encode()
        except UnicodeEncodeError:  # a lone surrogate: no database driver can bind it
            raise QueryError("invalid_value", f"The value for {name} is not valid text.") from None
    text = raw.strip()
    if type_ == "string":
        return raw
    if type_ == "integer":
        try:
            number = int(text)
        except ValueError:
            raise _invalid(name, raw, type_) from None
        if not -INT64 <= number < INT64:
            raise _invalid(name, raw, type_)
        return number
    if type_ == "number":
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise _invalid(name, raw, type_) from None
        if not number.is_finite() or abs(number) > Decimal("1e300"):
            raise _invalid(name, raw, type_)
        return _integral(number)
    if type_ == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _invalid(name, raw, type_)
    if type_ == "date":
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise _invalid(name, raw, type_) from None
    if type_ == "datetime":
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(name, raw, type_) from None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    raise AssertionError(f"unknown column type {type_}")


def _integral(number: Decimal) -> int | float:
    """19 stays an int, 19.5 a float: an int binds exactly on every backend."""
    value = float(number)
    return int(number) if number == number.to_integral_value() and abs(value) < 2**53 else value


def is_date_only(raw: str) -> bool:
    """'2024-06-30' (no time part): on a datetime column it means the whole day."""
    try:
        dt.date.fromisoformat(raw.strip())
        return True
    except ValueError:
        return False


def parse_bool(raw: str, *, name: str) -> bool:
    """true/false for `isnull`."""
    return parse_value(raw, "boolean", name=name)


def parse_int_in(raw: str, *, name: str, low: int, high: int) -> int:
    """A whole number in [low, high] (date parts, limit, offset)."""
    try:
        number = int(raw.strip())
    except ValueError:
        raise QueryError(
            "invalid_value",
            f"'{raw[:40]}' is not valid for {name}: expected a whole number from {low} to {high}.",
        ) from None
    if not low <= number <= high:
        raise QueryError(
            "invalid_value",
            f"{number} is not valid for {name}: expected a whole number from {low} to {high}.",
        )
    return number
