"""The default aggregation of a column: sum for additive measures, average for the rest of the
numbers, none for identifiers, years and text."""

from __future__ import annotations

import pytest

from datasets.measures import aggregation_default


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
