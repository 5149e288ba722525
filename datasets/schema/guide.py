"""What a GPT is told about the datasets: example calls and ready-to-paste GPT instructions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import quote

from datasets import measures
from datasets.engine.grammar import covered_years
from datasets.engine.spec import ColumnSpec, DatasetSpec
from datasets.measures import aggregation_default

API = "/api/v1/datasets"
# The GPT Builder's "Instructions" field takes at most 8,000 characters.
MAX_INSTRUCTIONS = 8000


@dataclass(frozen=True)
class ExampleCall:
    """A question a user may ask, and the one call that answers it."""

    question: str
    operation_id: str
    url: str  # path and query, relative to the server URL


def date_column(spec: DatasetSpec) -> ColumnSpec | None:
    """The dataset's main date column, if any: the first filterable date, else datetime (a date
    column is what a reader's calendar questions are about: examples never contradict it)."""
    dated = [column for column in spec.columns if "gte" in column.operators]
    for type_ in ("date", "datetime"):
        for column in dated:
            if column.type == type_:
                return column
    return None


# Names that say "this is the amount to add up", in order of preference.
MEASURE_WORDS = ("revenue", "sales", "amount", "total", "value", "price", "cost", "quantity")


def aggregation(spec: DatasetSpec, column: ColumnSpec) -> str:
    """sum, average or none: the admin's setting, else the default for the column's name."""
    if column.aggregation:
        return column.aggregation
    return aggregation_default(
        column.name, column.type, primary_key=column.name == spec.primary_key
    )


def _measures(spec: DatasetSpec, kind: str) -> list[ColumnSpec]:
    candidates = [
        column
        for column in spec.columns
        if column.type in ("number", "integer")
        and not column.protected
        and column.name != spec.primary_key
        and aggregation(spec, column) == kind
    ]
    # The columns named after the first measure word first, then the second, and so on; among
    # the rest, one with a unit (the admin said what it measures: a delay in minutes, not a
    # clock time) before one without.
    candidates.sort(
        key=lambda column: (
            *(word not in column.name for word in MEASURE_WORDS),
            not column.unit,
        )
    )
    return candidates


def measure_column(spec: DatasetSpec) -> ColumnSpec | None:
    """The additive measure most worth summing (revenue, units), if the dataset has one.

    Only a column whose aggregation is `sum`: a sum of prices, temperatures or life expectancies
    answers no question.
    """
    found = _measures(spec, measures.SUM)
    return found[0] if found else None


def averaged_column(spec: DatasetSpec) -> ColumnSpec | None:
    """The measure most worth averaging (a price, a rate, a temperature), if the dataset has one."""
    found = _measures(spec, measures.AVERAGE)
    return found[0] if found else None


@dataclass(frozen=True)
class ExampleMetric:
    """The metric examples use: its parameter, its result key and how a question names it."""

    metric: str
    key: str
    wording: str  # "Total revenue", "Average temperature", "Number of rows"


def example_metric(spec: DatasetSpec) -> ExampleMetric:
    """sum of the additive measure, else average of an averaged one, else the row count."""
    summed = measure_column(spec)
    if summed is not None:
        words = _words(summed.name)
        # "Total bill", not "Total total bill".
        words = words[len("total ") :] if words.startswith("total ") else words
        return ExampleMetric(f"sum:{summed.name}", f"sum_{summed.name}", f"Total {words}")
    averaged = averaged_column(spec)
    if averaged is not None:
        words = _words(averaged.name)
        words = words[len("average ") :] if words.startswith("average ") else words
        return ExampleMetric(f"avg:{averaged.name}", f"avg_{averaged.name}", f"Average {words}")
    return ExampleMetric("count", "count", "Number of rows")


def category_column(spec: DatasetSpec) -> ColumnSpec | None:
    """The column most worth grouping by: a string column with an enum, else any string one."""
    strings = [
        column
        for column in spec.columns
        if column.type == "string" and not column.protected and column.name != spec.primary_key
    ]
    with_enum = [column for column in strings if column.enum]
    found = with_enum or strings
    return found[0] if found else None


@dataclass(frozen=True)
class Period:
    """A period that has rows: its filter parameters and how a question names it."""

    query: str  # order_date__gte=2024-04-01&order_date__lte=2024-06-30
    label: str  # 2024 Q2
    year: int


_QUARTERS = {
    1: ("01-01", "03-31"),
    2: ("04-01", "06-30"),
    3: ("07-01", "09-30"),
    4: ("10-01", "12-31"),
}
# A date column with fewer distinct days than one per this many days of its range is sparse
# (model years stored as January 1st): a quarter inside its range may have no rows at all.
SPARSE_DAYS = 45


def _day(value: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def example_period(column: ColumnSpec | None) -> Period | None:
    """A period of the column's data that has rows, from its published range.

    A second quarter wholly inside the data (the latest one: the question users ask most),
    else the latest whole quarter inside it; when the data is too short or too sparse for
    a quarter to be sure to have rows, the year of the last value (which has that row).
    """
    if column is None:
        return None
    first, last = _day(column.min), _day(column.max)
    if first is None or last is None or first > last:
        return None
    span = (last - first).days + 1
    sparse = column.distinct_count is not None and column.distinct_count * SPARSE_DAYS < span
    if not sparse:
        inside = [
            (year, quarter)
            for year in range(last.year, first.year - 1, -1)
            for quarter in (4, 3, 2, 1)
            if first <= dt.date.fromisoformat(f"{year}-{_QUARTERS[quarter][0]}")
            and dt.date.fromisoformat(f"{year}-{_QUARTERS[quarter][1]}") <= last
        ]
        chosen = next((item for item in inside if item[1] == 2), inside[0] if inside else None)
        if chosen is not None:
            year, quarter = chosen
            return Period(_quarter_filter(column, year, quarter), f"{year} Q{quarter}", year)
    return Period(f"{column.name}__year={last.year}", str(last.year), last.year)


def _quarter_filter(column: ColumnSpec, year: int, quarter: int) -> str:
    if column.type == "date":
        start, end = _QUARTERS[quarter]
        return f"{column.name}__gte={year}-{start}&{column.name}__lte={year}-{end}"
    return f"{column.name}__year={year}&{column.name}__quarter={quarter}"


def _words(name: str) -> str:
    return name.replace("_", " ")


def example_calls(spec: DatasetSpec) -> list[ExampleCall]:
    """A few questions about the dataset and the call that answers each one.

    Every call returns rows: its period comes from the data's range, its values from the
    published enums, and its statistic fits the column (a sum only of an additive measure).
    """
    slug = spec.slug
    date = date_column(spec)
    metric = example_metric(spec)
    category = category_column(spec)
    period = example_period(date)
    calls = []

    if category is not None:
        group, by = category.name, _words(category.name)
    elif date is not None:
        group, by = f"{date.name}__month", "month"
    else:
        group, by = None, ""
    order = f"&ordering=-{metric.key}"
    if group is not None:
        query = [period.query] if period is not None else []
        query.append(f"group_by={group}&metrics={metric.metric}{order}")
        calls.append(
            ExampleCall(
                question=f"{metric.wording} by {by}"
                + (f" in {period.label}" if period is not None else ""),
                operation_id=f"aggregate_{slug}",
                url=f"{API}/{slug}/aggregate/?" + "&".join(query),
            )
        )
    else:
        calls.append(
            ExampleCall(
                question=metric.wording,
                operation_id=f"aggregate_{slug}",
                url=f"{API}/{slug}/aggregate/?metrics={metric.metric}",
            )
        )
    if date is not None and period is not None:
        calls.append(
            ExampleCall(
                question=f"{metric.wording} per month in {period.year}",
                operation_id=f"aggregate_{slug}",
                url=f"{API}/{slug}/aggregate/?{date.name}__year={period.year}"
                f"&group_by={date.name}__month&metrics={metric.metric}&ordering={date.name}__month",
            )
        )
    if category is not None and category.enum and "eq" in category.operators:
        value = next((item for item in category.enum if item not in (None, "")), None)
        if value is not None:
            calls.append(
                ExampleCall(
                    question=f"Show 10 rows where {_words(category.name)} is {value}",
                    operation_id=f"list_{slug}_rows",
                    url=f"{API}/{slug}/rows/?{category.name}={quote(str(value))}&limit=10",
                )
            )
    if date is not None and date.sortable and not date.protected:
        calls.append(
            ExampleCall(
                question="Show the 10 most recent rows",
                operation_id=f"list_{slug}_rows",
                url=f"{API}/{slug}/rows/?ordering=-{date.name}&limit=10",
            )
        )
    else:
        calls.append(
            ExampleCall(
                question="Show 10 rows",
                operation_id=f"list_{slug}_rows",
                url=f"{API}/{slug}/rows/?limit=10",
            )
        )
    return calls


def dataset_about(spec: DatasetSpec) -> str:
    """The admin's description, or when there is none a line computed from the data the caller
    may see: "336,776 rows, keyed by row_id, time_hour from 2013-01-01 to 2013-12-31."."""
    if spec.description.strip():
        return spec.description.strip()
    parts = []
    if spec.row_count is not None:
        parts.append(f"{spec.row_count:,} row{'' if spec.row_count == 1 else 's'}")
    key = spec.column(spec.primary_key) if spec.primary_key else None
    if key is not None:
        parts.append(f"keyed by {key.name}")
    date = date_column(spec)
    if date is not None and date.min is not None and date.max is not None:
        parts.append(f"{date.name} from {str(date.min)[:10]} to {str(date.max)[:10]}")
    if not parts:
        return ""
    text = ", ".join(parts) + "."
    return text[0].upper() + text[1:]


def coverage(spec: DatasetSpec) -> str:
    """A sentence on the period the dataset covers, from its date column's range."""
    date = date_column(spec)
    years = covered_years(date) if date is not None else None
    if date is None or years is None:
        return ""
    first, last = years
    span = str(first) if first == last else f"{first}-{last}"
    return f"Covers {span} ({date.name} from {str(date.min)[:10]} to {str(date.max)[:10]})."


def statistics_hint(spec: DatasetSpec) -> str:
    """Which columns add up and which average, e.g. "Sum: revenue, units. Average: unit_price."."""
    parts = []
    for kind, word in ((measures.SUM, "Sum"), (measures.AVERAGE, "Average")):
        names = [column.name for column in _measures(spec, kind)]
        if names:
            parts.append(f"{word}: {', '.join(names)}.")
    return " ".join(parts)


def gpt_instructions(specs: list[DatasetSpec]) -> str:
    """Ready-to-paste instructions for the GPT Builder, generated from the datasets."""
    lines = [
        "You answer questions about the data below by calling the Gateway actions. Never "
        "invent numbers: every figure comes from a call.",
        "",
        "Datasets:",
    ]
    for spec in specs:
        columns = ", ".join(column.name for column in spec.columns)
        about = " ".join(
            part
            for part in (
                spec.description.strip(),
                coverage(spec),
                statistics_hint(spec),
                f"Columns: {columns}.",
            )
            if part
        )
        lines.append(f"- {spec.slug} ({spec.title}): {about}")
    calls = [call for spec in specs for call in example_calls(spec)]
    # The one example shown: a grouped total over a period of the data, the typical question.
    example = next(
        (call for call in calls if "__gte=" in call.url or "__year=" in call.url), None
    ) or next((call for call in calls if call.operation_id.startswith("aggregate_")), None)
    lines += [
        "",
        "How to call:",
        "- For totals, counts, averages or any 'by X' question, call aggregate_<dataset> with "
        "group_by and metrics (sum:col, avg:col, min:col, max:col, count, count_distinct:col) "
        "instead of reading rows and adding them up yourself. Sum only the columns listed under "
        "Sum (amounts, units); average the others (prices, rates, temperatures).",
        "- Filter dates with <column>__gte and <column>__lte (YYYY-MM-DD): Q2 2024 is "
        "__gte=2024-04-01 and __lte=2024-06-30. <column>__year, <column>__quarter (1-4) and "
        "<column>__month (1-12) work too. Check the years a dataset covers before you answer.",
        "- Use list_<dataset>_rows for individual records: filter with column parameters, sort "
        "with ordering (-col for descending), choose columns with fields. When a response has "
        "a next URL, call again with its offset to get more; if truncated is true, say so.",
        "- Use describe_dataset to learn a dataset's columns, valid values and ranges, and which "
        "columns are unique (an e-mail or an id identifies a thing; a name may be shared).",
        "- If a call returns an error, read its message, fix the parameter it names and retry.",
    ]
    if example is not None:
        lines.append(f"- Example: {example.question} -> GET {example.url}")
    text = "\n".join(lines)
    if len(text) > MAX_INSTRUCTIONS:
        # Column lists are the first thing to go: describe_dataset gives them on demand.
        text = "\n".join(
            line.split(" Columns: ")[0] if line.startswith("- ") and " Columns: " in line else line
            for line in lines
        )
    return text[:MAX_INSTRUCTIONS]
