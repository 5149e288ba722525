"""How a number column adds up: summed (revenue, units), averaged (prices, rates) or neither (a year).

A column's aggregation tells the examples, the GPT instructions and the describe answer which
statistic makes sense for it: a sum of revenue answers "how much", a sum of temperatures or of
life expectancies answers nothing. The admin can change it per column; this module gives the
default, from the column's API name and type.
"""

from __future__ import annotations

SUM = "sum"
AVERAGE = "average"
NONE = "none"
CHOICES = (
    (SUM, "sum (additive: revenue, units)"),
    (AVERAGE, "average (rates, prices, temperatures)"),
    (NONE, "none (identifiers, years, codes)"),
)

NUMERIC_TYPES = ("integer", "number")

# Words that name the statistic itself: "total_sales", "avg_temp".
_SUMMED = {"total", "sum", "sums", "totals"}
_AVERAGED = {"avg", "average", "mean", "median"}
# Words that name what a column measures, by the first letters of a word of the name.
_SUM_WORDS = (
    "revenue",
    "sales",
    "amount",
    "quantit",
    "qty",
    "units",
    "count",
    "cost",
    "profit",
    "spend",
    "spent",
    "bill",
    "tip",
    "fee",
    "tax",
    "paid",
    "payment",
    "income",
    "expense",
    "turnover",
    "orders",
    "visits",
    "clicks",
    "views",
    "sessions",
    "deaths",
    "cases",
    "births",
    "precip",
    "rainfall",
    "snowfall",
    "volume",
    "refund",
    "budget",
)
_AVERAGE_WORDS = (
    "price",
    "rate",
    "ratio",
    "pct",
    "percent",
    "share",
    "temp",
    "celsius",
    "fahrenheit",
    "humidity",
    "pressure",
    "wind",
    "speed",
    "pop",
    "percap",
    "capita",
    "life",
    "expectancy",
    "age",
    "score",
    "rating",
    "lat",
    "lon",
    "lng",
    "mpg",
    "economy",
    "elevation",
    "altitude",
    "height",
    "weight",
    "density",
    "index",
    "level",
    "margin",
    "duration",
    "distance",
    "horsepower",
    "acceleration",
    "displacement",
    "cylinders",
)
# Numbers that identify or date a row: adding or averaging them answers nothing.
_LABEL_WORDS = {
    "id",
    "key",
    "code",
    "no",
    "num",
    "year",
    "yr",
    "quarter",
    "month",
    "week",
    "day",
    "hour",
    "minute",
    "zip",
    "postcode",
    "postal",
    "phone",
    "fips",
    "rank",
    "position",
}


def aggregation_default(name: str, type: str, *, primary_key: bool = False) -> str:
    """sum, average or none for a column, from its API name (snake_case) and type."""
    if type not in NUMERIC_TYPES or primary_key:
        return NONE
    words = [word for word in name.lower().split("_") if word]
    if not words:
        return AVERAGE
    if any(word in _SUMMED for word in words):
        return SUM
    if any(word in _AVERAGED for word in words):
        return AVERAGE
    # The last word that says something is the head of the name: "unit_price" is a price,
    # "price_count" a count, "model_year" a year.
    for word in reversed(words):
        if word in _LABEL_WORDS:
            return NONE
        if word.startswith(_AVERAGE_WORDS):
            return AVERAGE
        if word.startswith(_SUM_WORDS):
            return SUM
    # An unknown measure is averaged: an average is never a nonsense figure, a sum may be.
    return AVERAGE


# What a number counts or measures, by the last word of a column's name: suggestions for the
# admin to confirm (bill_length_mm, body_mass_g, discount_pct), never published unconfirmed.
_UNIT_SUFFIXES = {
    "mm": "mm",
    "cm": "cm",
    "km": "km",
    "mi": "miles",
    "miles": "miles",
    "g": "g",
    "kg": "kg",
    "lb": "lb",
    "lbs": "lb",
    "t": "t",
    "ml": "ml",
    "pct": "%",
    "percent": "%",
    "usd": "USD",
    "eur": "EUR",
    "gbp": "GBP",
    "c": "°C",
    "celsius": "°C",
    "fahrenheit": "°F",
    "ms": "ms",
    "sec": "s",
    "secs": "s",
    "seconds": "s",
    "min": "minutes",
    "mins": "minutes",
    "minutes": "minutes",
    "hours": "hours",
    "hrs": "hours",
    "days": "days",
    "kwh": "kWh",
    "kw": "kW",
    "mw": "MW",
    "mph": "mph",
    "kmh": "km/h",
    "kph": "km/h",
    "hpa": "hPa",
    "bytes": "bytes",
}
# A comment that ends in a bracketed unit: "Flipper length [mm]", "Arrival delay (minutes)".
_UNIT_WORDS = {unit.lower() for unit in _UNIT_SUFFIXES.values()} | set(_UNIT_SUFFIXES)
UNIT_MAX_CHARS = 40


def unit_suggestion(name: str, type: str) -> str:
    """The unit a number column's name states ("flipper_length_mm": mm), or ""."""
    if type not in NUMERIC_TYPES:
        return ""
    words = [word for word in name.lower().split("_") if word]
    if len(words) < 2:
        return ""  # "g" or "min" alone is a name, not a unit
    return _UNIT_SUFFIXES.get(words[-1], "")


def unit_from_comment(comment: str) -> tuple[str, str]:
    """A source column's comment split into its description and the unit it ends with, if any:
    "Flipper length [mm]" -> ("Flipper length", "mm"); "Delay (minutes)" -> ("Delay", "minutes").
    Square brackets always hold a unit; round ones only a known unit's name."""
    text = " ".join((comment or "").split())
    for opening, closing in ("[]", "()"):
        if text.endswith(closing) and opening in text:
            head, _, unit = text[:-1].rpartition(opening)
            unit = unit.strip()
            known = opening == "[" or unit.lower() in _UNIT_WORDS
            if unit and known and len(unit) <= UNIT_MAX_CHARS and head.strip():
                return head.strip().rstrip(",;:").strip(), unit
    return text, ""
