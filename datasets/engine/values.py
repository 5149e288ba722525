"""Parsing of query-string values by column type, with errors a model can act on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from datasets.engine import grammar
from datasets.engine.errors import QueryError, shown

MAX_STRING = 1000
INT64 = 2**63

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _invalid(name: str, raw: str, type_: str) -> QueryError:
    return QueryError(
        "invalid_value",
        f"'{shown(raw)}' is not a valid value for {name}: expected {grammar.TYPES[type_].wording}.",
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
            decimal = Decimal(text)
        except InvalidOperation:
            raise _invalid(name, raw, type_) from None
        if not decimal.is_finite() or abs(decimal) > Decimal("1e300"):
            raise _invalid(name, raw, type_)
        return _integral(decimal)
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
        return value  # with its offset, if it has one: datasets/engine/zones.py reads it
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


def parse_operand(
    record: grammar.Operator,
    column,
    raw: str,
    *,
    name: str,
    low_high: tuple[int, int] | None = None,
):
    """The value of a filter `name` using operator `record` on `column`, parsed by its operand kind."""
    operand = record.operand
    if operand == grammar.Operand.FLAG:
        return parse_bool(raw, name=name)
    if operand == grammar.Operand.PART:
        low, high = low_high or record.range or grammar.YEAR_RANGE
        try:
            return parse_int_in(raw, name=name, low=low, high=high)
        except QueryError as error:
            closest = _closest_in(raw, low, high)
            if closest is None:
                raise
            raise QueryError("invalid_value", f"{error.message} Did you mean {closest}?") from None
    if operand == grammar.Operand.VALUES:
        parts = raw.split(",")
        if not raw or len(parts) > grammar.MAX_IN_VALUES:
            raise QueryError(
                "invalid_value",
                f"{name} takes 1 to {grammar.MAX_IN_VALUES} comma-separated values.",
            )
        return tuple(parse_value(part, column.type, name=name) for part in parts)
    if operand == grammar.Operand.TEXT:
        if raw == "":
            raise QueryError("invalid_value", f"{name} needs a non-empty value.")
        return parse_value(raw, "string", name=name)
    return parse_value(raw, column.type, name=name)


def _closest_in(raw: str, low: int, high: int) -> int | None:
    """The number in [low, high] a caller most likely meant: 24 -> 2024 for years, else the nearest."""
    try:
        number = int(raw.strip())
    except ValueError:
        return None
    for century in (2000, 1900):
        if 0 <= number < 100 and low <= century + number <= high:
            return century + number
    return min(max(number, low), high)
