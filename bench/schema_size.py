"""Bytes of the OpenAPI document per published column, over the demo and a few generated shapes.

Run: .venv/bin/python bench/schema_size.py  (uses a throwaway data directory and SQLite file)

Null counts are known, as imports record them (a column without nulls takes no `isnull`).
Each dataset's cost is the size of the compact JSON document with it, minus the size of the
document without any dataset, divided by its columns. Set SCHEMA_SIZE_ROOT to another checkout
(for example `git archive <commit> | tar -x -C /tmp/old`) to measure that code on the same datasets.

Measured before the compact schema (commit 9f25f09), on these datasets:

    dataset        columns    bytes  per column
    sales               11    42398        3854
    gapminder            7    28001        4000
    weather              7    27542        3935
    orders_wide         40   128172        3204
    all                 65   226113        3479

Measured on 2026-12-07, with the real mix (nine public datasets' shapes in one document, their
columns without admin descriptions, as a fresh import leaves them):

    dataset        columns    bytes  per column
    sales               11    14616        1329
    gapminder            7    10667        1524
    weather              7    10420        1489
    orders_wide         40    40017        1000
    all                 65    75720        1165
    real mix            82   106140        1294   (1,451 before __in, __ne and offset lost their
                                                   repeated text)

And after `group_by` said "any column except ..." and row by key and aggregates took expand:

    real mix            82   105552        1287
    linked mix          82   106363        1297   (flights' carrier, origin, dest linked)
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(os.environ.get("SCHEMA_SIZE_ROOT") or Path(__file__).resolve().parent.parent)
# Not this folder: bench/mcp.py would hide the `mcp` package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(ROOT))
os.environ["GATEWAY_DATA_DIR"] = tempfile.mkdtemp(prefix="gateway-bench-")
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
os.environ["GATEWAY_PUBLIC_URL"] = "https://gateway.example.com"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatewaysite.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from datasets.demo import demo_load  # noqa: E402
from datasets.engine.spec import ColumnSpec, DatasetSpec  # noqa: E402
from datasets.schema.build import schema_build  # noqa: E402
from datasets.selectors import dataset_spec  # noqa: E402

SERVER = "https://gateway.example.com"
_FIELDS = {field.name for field in dataclasses.fields(ColumnSpec)}
TARGET = 1300
CONTINENTS = ("Africa", "Americas", "Asia", "Europe", "Oceania")


def _column(name, kind, *, enum=None, low=None, high=None, pii="none", text="", nulls=0, **more):
    # Older code has no null counts: measured without them.
    counted = {"null_count": nulls} if "null_count" in _FIELDS else {}
    return ColumnSpec(
        name=name,
        physical=name,
        type=kind,
        description=text or f"The {name.replace('_', ' ')}.",
        searchable=kind == "string",
        pii=pii,
        enum=tuple(enum) if enum is not None else None,
        min=low,
        max=high,
        **counted,
        **more,
    )


def _dataset(
    number: int, slug: str, title: str, description: str, columns, key, **more
) -> DatasetSpec:
    return DatasetSpec(
        id=1000 + number,
        slug=slug,
        title=title,
        description=description,
        table="data",
        primary_key=key,
        row_count=10_000,
        all_columns=tuple(columns),
        **more,
    )


def gapminder() -> DatasetSpec:
    """Country indicators by year: a generated key, two categories, measures and rates."""
    columns = [
        _column("row_id", "integer", low=1, high=1704),
        _column("country", "string"),  # 142 countries: no enum
        _column("continent", "string", enum=CONTINENTS),
        _column("year", "integer", low=1952, high=2007),
        _column("life_exp", "number", low=23.6, high=82.6, text="Life expectancy in years."),
        _column("pop", "integer", low=60011, high=1318683096, text="Population."),
        _column("gdp_percap", "number", low=241.2, high=113523.1, text="GDP per person."),
    ]
    return _dataset(
        1,
        "gapminder",
        "Gapminder",
        "Life expectancy, population and GDP per person by country and year.",
        columns,
        "row_id",
    )


def weather() -> DatasetSpec:
    """Daily weather: a date, enums, booleans and temperatures."""
    columns = [
        _column("day", "date", low="2012-01-01", high="2015-12-31"),
        _column("precipitation", "number", low=0.0, high=55.9),
        _column("temp_max", "number", low=-1.6, high=35.6),
        _column("temp_min", "number", low=-7.1, high=18.3),
        _column("wind", "number", low=0.4, high=9.5),
        _column("weather", "string", enum=("drizzle", "fog", "rain", "snow", "sun")),
        _column("windy", "boolean", enum=(False, True)),
    ]
    return _dataset(2, "weather", "Seattle weather", "Daily weather in Seattle.", columns, None)


def orders_wide() -> DatasetSpec:
    """A 40-column order table: every type, enums, ranges, some nulls, a masked and a hidden column."""
    columns = [_column("order_id", "integer", low=1, high=400_000)]
    for number in range(1, 4):
        columns.append(_column(f"event_{number}_date", "date", low="2021-01-01", high="2025-12-31"))
    columns.append(
        _column("updated_at", "datetime", low="2021-01-01T00:00:00", high="2025-12-31T23:59:59")
    )
    for number in range(1, 11):
        columns.append(_column(f"segment_{number}", "string", enum=("a", "b", "c", "d")))
    for number in range(1, 9):
        columns.append(_column(f"note_{number}", "string", nulls=number))
    for number in range(1, 9):
        columns.append(
            _column(f"amount_{number}", "number", low=0.0, high=9999.5, nulls=number % 2)
        )
    for number in range(1, 6):
        columns.append(_column(f"units_{number}", "integer", low=0, high=250))
    for number in range(1, 4):
        columns.append(_column(f"flag_{number}", "boolean", enum=(False, True)))
    columns.append(_column("email", "string", pii="mask"))
    columns.append(_column("secret", "string", pii="hide"))
    return _dataset(
        3, "orders_wide", "Orders (wide)", "Orders with 40 attributes.", columns, "order_id"
    )


def _keyed(number, slug, title, description, columns, key="row_id", rows=1000, **more):
    """A real dataset's shape: Gateway's added row_id key first unless the file has a key."""
    if key == "row_id":
        columns = [_column("row_id", "integer", low=1, high=rows), *columns]
    return _dataset(number, slug, title, description, columns, key, **more)


def real_mix() -> list[DatasetSpec]:
    """Public datasets of the kind data owners publish (their columns, enums and ranges), with
    no admin descriptions on their columns, as a fresh import leaves them."""

    def plain(name, kind, **options):
        return _column(name, kind, text=" ", **options)

    days = ("Fri", "Sat", "Sun", "Thur")
    tips = [
        plain("total_bill", "number", low=3.07, high=50.81),
        plain("tip", "number", low=1.0, high=10.0),
        plain("sex", "string", enum=("Female", "Male")),
        plain("smoker", "string", enum=("No", "Yes")),
        plain("day", "string", enum=days),
        plain("time", "string", enum=("Dinner", "Lunch")),
        plain("size", "integer", low=1, high=6),
    ]
    cars = [
        plain("mpg", "number", low=9.0, high=46.6),
        plain("cylinders", "integer", low=3, high=8),
        plain("displacement", "number", low=68.0, high=455.0),
        plain("horsepower", "integer", low=46, high=230, nulls=6),
        plain("weight", "integer", low=1613, high=5140),
        plain("acceleration", "number", low=8.0, high=24.8),
        plain("model_year", "integer", low=70, high=82),
        plain("origin", "string", enum=("europe", "japan", "usa")),
        plain("name", "string"),
    ]
    airports = [
        plain("faa", "string"),
        plain("name", "string"),
        plain("lat", "number", low=19.72, high=72.27),
        plain("lon", "number", low=-176.65, high=174.11),
        plain("alt", "integer", low=-54, high=9078),
        plain("tz", "integer", low=-10, high=8),
        plain("dst", "string", enum=("A", "N", "U")),
        plain("tzone", "string", nulls=3),
    ]
    flights = [
        plain("year", "integer", low=2013, high=2013),
        plain("month", "integer", low=1, high=12),
        plain("day", "integer", low=1, high=31),
        plain("dep_time", "integer", low=1, high=2400, nulls=8255),
        plain("sched_dep_time", "integer", low=106, high=2359),
        plain("dep_delay", "number", low=-43.0, high=1301.0, nulls=8255),
        plain("arr_time", "integer", low=1, high=2400, nulls=8713),
        plain("sched_arr_time", "integer", low=1, high=2359),
        plain("arr_delay", "number", low=-86.0, high=1272.0, nulls=9430),
        plain("carrier", "string", enum=("9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA")),
        plain("flight", "integer", low=1, high=8500),
        plain("tailnum", "string", nulls=2512),
        plain("origin", "string", enum=("EWR", "JFK", "LGA")),
        plain("dest", "string"),
        plain("air_time", "number", low=20.0, high=695.0, nulls=9430),
        plain("distance", "number", low=17.0, high=4983.0),
        plain("hour", "integer", low=1, high=23),
        plain("minute", "integer", low=0, high=59),
        plain(
            "time_hour",
            "datetime",
            low="2013-01-01T05:00:00-05:00",
            high="2013-12-31T23:00:00-05:00",
        ),
    ]
    airlines = [plain("carrier", "string", low="9E", high="YV"), plain("name", "string")]
    penguins = [
        plain("species", "string", enum=("Adelie", "Chinstrap", "Gentoo")),
        plain("island", "string", enum=("Biscoe", "Dream", "Torgersen")),
        plain("bill_length_mm", "number", low=32.1, high=59.6, nulls=2),
        plain("bill_depth_mm", "number", low=13.1, high=21.5, nulls=2),
        plain("flipper_length_mm", "integer", low=172, high=231, nulls=2),
        plain("body_mass_g", "integer", low=2700, high=6300, nulls=2),
        plain("sex", "string", enum=("female", "male"), nulls=11),
        plain("year", "integer", low=2007, high=2009),
    ]
    # Older code has no time zones: measured without them.
    flights_zone = {"time_zone": "America/New_York"} if "instant" in _FIELDS else {}
    return [
        _keyed(11, "tips", "Tips", "", tips, rows=244),
        _keyed(12, "cars", "Cars", "", cars, rows=406),
        _keyed(13, "airports", "Airports", "", airports, key="faa"),
        _keyed(14, "flights", "Flights", "", flights, rows=336776, **flights_zone),
        _keyed(15, "airlines", "Airlines", "", airlines, key="carrier"),
        _keyed(16, "penguins", "Penguins", "", penguins, rows=344),
    ]


def linked(specs: list[DatasetSpec]) -> list[DatasetSpec]:
    """The real mix as its admin links it: flights' carrier, origin and dest refer to airlines
    and airports, so each gains a reference and `expand`."""
    from datasets.engine.spec import Link

    targets = {"carrier": (15, "airlines", "carrier"), "origin": (13, "airports", "faa")}
    targets["dest"] = targets["origin"]

    def link(column: ColumnSpec) -> ColumnSpec:
        target = targets.get(column.name)
        if target is None:
            return column
        return dataclasses.replace(column, references=Link(*target))

    return [
        dataclasses.replace(spec, all_columns=tuple(link(c) for c in spec.all_columns))
        if spec.slug == "flights"
        else spec
        for spec in specs
    ]


def _size(specs: list[DatasetSpec]) -> int:
    return len(schema_build(specs=specs, server_url=SERVER).json)


def main() -> None:
    call_command("migrate", verbosity=0)
    demo_load(rows=2000)
    specs = [dataset_spec("sales"), gapminder(), weather(), orders_wide()]
    empty = _size([])
    print(f"code: {ROOT}")
    print(f"{'dataset':<14}{'columns':>8}{'bytes':>9}{'per column':>12}")
    total_bytes = total_columns = 0
    for spec in specs:
        size = _size([spec]) - empty
        columns = len(spec.columns)
        total_bytes += size
        total_columns += columns
        print(f"{spec.slug:<14}{columns:>8}{size:>9}{size / columns:>12.0f}")
    average = total_bytes / total_columns
    print(f"{'all':<14}{total_columns:>8}{total_bytes:>9}{average:>12.0f}  (target {TARGET})")
    # The mix of real datasets in one document, as one GPT imports them: shared parts once.
    real = [dataset_spec("sales"), gapminder(), weather(), *real_mix()]
    columns = sum(len(spec.columns) for spec in real)
    for name, mix in (("real mix", real), ("linked mix", linked(real))):
        size = _size(mix) - empty
        print(f"{name:<14}{columns:>8}{size:>9}{size / columns:>12.0f}  (target {TARGET})")
    print(f"Both mixes: {len(real)} datasets in one document: {', '.join(s.slug for s in real)};")
    print("the linked mix has flights' carrier, origin and dest refer to airlines and airports.")


if __name__ == "__main__":
    main()
