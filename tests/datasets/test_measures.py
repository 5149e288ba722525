"""The default aggregation of a column: sum for additive measures, average for the rest of the
numbers, none for identifiers, years and text."""

from __future__ import annotations

import pytest

from datasets.measures import aggregation_default, unit_from_comment, unit_suggestion


@pytest.mark.parametrize(
    ("name", "type", "expected"),
    [
        # additive: a sum answers "how much"
        ("revenue", "number", "sum"),
        ("units", "integer", "sum"),
        ("units_sold", "integer", "sum"),
        ("quantity", "integer", "sum"),
        ("total_bill", "number", "sum"),
        ("tip", "number", "sum"),
        ("order_count", "integer", "sum"),
        ("precipitation", "number", "sum"),
        ("price_total", "number", "sum"),
        # not additive: averaged
        ("unit_price", "number", "average"),
        ("temp_max", "number", "average"),
        ("avg_revenue", "number", "average"),
        ("life_exp", "number", "average"),
        ("gdp_percap", "number", "average"),
        ("pop", "integer", "average"),
        ("latitude", "number", "average"),
        ("lng", "number", "average"),
        ("mpg", "number", "average"),
        ("discount_rate", "number", "average"),
        ("horsepower", "integer", "average"),
        ("mystery", "number", "average"),  # unknown: an average is never a nonsense figure
        # labels: neither
        ("model_year", "integer", "none"),
        ("year", "integer", "none"),
        ("customer_id", "integer", "none"),
        ("zip", "integer", "none"),
        ("sales_rank", "integer", "none"),
        ("revenue", "string", "none"),
        ("order_date", "date", "none"),
        ("paid", "boolean", "none"),
    ],
)
def test_default_aggregation(name, type, expected):
    assert aggregation_default(name, type) == expected


def test_the_primary_key_is_never_aggregated():
    assert aggregation_default("units", "integer", primary_key=True) == "none"


# Units: suggested from a column's name, read from a source's comment


@pytest.mark.parametrize(
    ("name", "type", "expected"),
    [
        ("flipper_length_mm", "integer", "mm"),
        ("body_mass_g", "number", "g"),
        ("discount_pct", "number", "%"),
        ("price_usd", "number", "USD"),
        ("delay_minutes", "integer", "minutes"),
        ("temp_c", "number", "°C"),
        ("distance_km", "number", "km"),
        ("energy_kwh", "number", "kWh"),
        ("g", "number", ""),  # one word: a name, not a unit
        ("min", "integer", ""),
        ("size_mm", "string", ""),  # text has no unit
        ("revenue", "number", ""),  # nothing in the name says it
        ("mm_count", "integer", ""),  # the unit word is not the last one
    ],
)
def test_a_unit_is_suggested_from_the_last_word_of_a_number_columns_name(name, type, expected):
    assert unit_suggestion(name, type) == expected


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("Flipper length [mm]", ("Flipper length", "mm")),
        ("Arrival delay (minutes)", ("Arrival delay", "minutes")),
        ("Net revenue, [EUR]", ("Net revenue", "EUR")),
        ("GDP per person [international $ 2017]", ("GDP per person", "international $ 2017")),
        ("Order total (before tax)", ("Order total (before tax)", "")),  # not a unit
        ("Who ordered", ("Who ordered", "")),
        ("[mm]", ("[mm]", "")),  # a unit with nothing to describe stays the description
        ("", ("", "")),
        (None, ("", "")),
        ("  Spread\nover lines  [kg] ", ("Spread over lines", "kg")),
    ],
)
def test_a_source_comment_gives_a_description_and_the_unit_it_ends_with(comment, expected):
    assert unit_from_comment(comment) == expected
