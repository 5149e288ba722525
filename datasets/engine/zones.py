"""A dataset's time zone: the zone its dates are counted in.

A column of moments (a timestamp with a time zone: TIMESTAMPTZ, MySQL's TIMESTAMP, ClickHouse's
DateTime) is shown with its offset in the dataset's zone, and its date filters and buckets count
days there: a flight at 23:30 in New York on December 31 is in that year, whatever UTC says. A
column of wall-clock times (a timestamp without a zone) is taken as already in that zone.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo

import sqlalchemy as sa

DEFAULT = "UTC"
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu"})
# IANA names: letters, digits and _+-/ only, so that one is safe as a SQL literal.
_NAME = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")


@functools.cache
def _names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_zone(name: str) -> bool:
    """Is `name` an IANA time zone (Europe/Berlin, America/New_York, UTC)?"""
    return bool(_NAME.fullmatch(name)) and name in _names()


def zone_of(name: str | None) -> str:
    """A source's own zone as a dataset's default: the name when it is an IANA zone, else UTC."""
    name = (name or "").strip()
    if name in UTC_NAMES or not is_zone(name):
        return DEFAULT
    return name


@functools.cache
def tzinfo(name: str) -> dt.tzinfo:
    return dt.UTC if name in UTC_NAMES else zoneinfo.ZoneInfo(name)


def sql_literal(name: str):
    """The zone as a SQL string literal (inlined, so that a statement's text names its zone)."""
    assert is_zone(name), name  # checked when the admin saved it; never client input
    return sa.literal_column(f"'{name}'", sa.String)


def shown(value, zone: str):
    """A moment from a driver as JSON: ISO 8601 with its offset in the zone.

    Drivers hand back an aware datetime (DuckDB, PostgreSQL, ClickHouse) or a naive one in UTC
    (MySQL, whose sessions Gateway sets to UTC), or ISO text.
    """
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(tzinfo(zone)).isoformat()


def compared(value: dt.datetime, *, instant: bool, zone: str) -> dt.datetime:
    """A filter's datetime as the column compares it.

    On a column of moments: an aware moment in UTC, a value without an offset being a time in the
    dataset's zone. On a column of wall-clock times: the time in the dataset's zone, without offset.
    """
    if instant:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=tzinfo(zone))
        return aware.astimezone(dt.UTC)
    if value.tzinfo is None:
        return value
    return value.astimezone(tzinfo(zone)).replace(tzinfo=None)
