"""What a GPT is told about the datasets: example calls and ready-to-paste GPT instructions."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from datasets.engine.spec import ColumnSpec, DatasetSpec

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
    """The dataset's main date or datetime column (the first filterable one), if any."""
    for column in spec.columns:
        if column.type in ("date", "datetime") and "gte" in column.operators:
            return column
    return None


# Names that say "this is the amount to add up", in order of preference.
MEASURE_WORDS = ("revenue", "sales", "amount", "total", "value", "price", "cost", "quantity")


def measure_column(spec: DatasetSpec) -> ColumnSpec | None:
    """The column most worth summing: a number column named like an amount, else the first one."""
    candidates = [
        column
        for kind in ("number", "integer")
        for column in spec.columns
        if column.type == kind and not column.protected and column.name != spec.primary_key
    ]
    for word in MEASURE_WORDS:
        for column in candidates:
            if word in column.name:
                return column
    return candidates[0] if candidates else None


def category_column(spec: DatasetSpec) -> ColumnSpec | None:
    """The column most worth grouping by: a string column with an enum, else any string one."""
    strings = [
        column
        for column in spec.columns
        if column.type == "string" and not column.protected and column.name != spec.primary_key
    ]
    with_enum = [column for column in strings if column.enum]
    return (with_enum or strings or [None])[0]


def covered_years(column: ColumnSpec | None) -> tuple[int, int] | None:
    """The first and last year of a date column's published range."""
    if column is None or column.min is None or column.max is None:
        return None
    try:
        return int(str(column.min)[:4]), int(str(column.max)[:4])
    except ValueError:
        return None


def _q2_year(column: ColumnSpec | None) -> int | None:
    years = covered_years(column)
    if years is None:
        return None
    first, last = years
    # The latest year whose second quarter has data.
    if str(column.max)[:10] < f"{last}-04-01" and last - 1 >= first:
        return last - 1
    return last


def _period_filter(column: ColumnSpec, year: int, quarter: int) -> str:
    if column.type == "date":
        start, end = {1: ("01-01", "03-31"), 2: ("04-01", "06-30"), 3: ("07-01", "09-30")}.get(
            quarter, ("10-01", "12-31")
        )
        return f"{column.name}__gte={year}-{start}&{column.name}__lte={year}-{end}"
    return f"{column.name}__year={year}&{column.name}__quarter={quarter}"


def _words(name: str) -> str:
    return name.replace("_", " ")


def example_calls(spec: DatasetSpec) -> list[ExampleCall]:
    """A few questions about the dataset and the call that answers each one."""
    slug = spec.slug
    date = date_column(spec)
    measure = measure_column(spec)
    category = category_column(spec)
    year = _q2_year(date)
    calls = []

    if measure is not None:
        metric, key, what = f"sum:{measure.name}", f"sum_{measure.name}", _words(measure.name)
    else:
        metric, key, what = "count", "count", "row count"
    if category is not None:
        group, by = category.name, _words(category.name)
    elif date is not None:
        group, by = f"{date.name}__month", "month"
    else:
        group, by = None, ""
    if group is not None:
        query = []
        period = ""
        if date is not None and year is not None:
            query.append(_period_filter(date, year, 2))
            period = f" for Q2 {year}"
        query.append(f"group_by={group}&metrics={metric}&ordering=-{key}")
        calls.append(
            ExampleCall(
                question=f"Show me {by} {what}{period}"
                if by != "month"
                else f"Show me {what} by month{period}",
                operation_id=f"aggregate_{slug}",
                url=f"{API}/{slug}/aggregate/?" + "&".join(query),
            )
        )
    if date is not None and year is not None:
        calls.append(
            ExampleCall(
                question=f"What was the {what} per month in {year}?",
                operation_id=f"aggregate_{slug}",
                url=f"{API}/{slug}/aggregate/?{date.name}__year={year}"
                f"&group_by={date.name}__month&metrics={metric}&ordering={date.name}__month",
            )
        )
    if category is not None and category.enum and "eq" in category.operators:
        value = next((item for item in category.enum if item not in (None, "")), None)
        if value is not None:
            calls.append(
                ExampleCall(
                    question=f"Show 10 {spec.title} rows where {_words(category.name)} is {value}",
                    operation_id=f"list_{slug}_rows",
                    url=f"{API}/{slug}/rows/?{category.name}={quote(str(value))}&limit=10",
                )
            )
    if date is not None and date.sortable and not date.protected:
        calls.append(
            ExampleCall(
                question=f"Show the 10 most recent {spec.title} rows",
                operation_id=f"list_{slug}_rows",
                url=f"{API}/{slug}/rows/?ordering=-{date.name}&limit=10",
            )
        )
    else:
        calls.append(
            ExampleCall(
                question=f"Show 10 {spec.title} rows",
                operation_id=f"list_{slug}_rows",
                url=f"{API}/{slug}/rows/?limit=10",
            )
        )
    return calls


def coverage(spec: DatasetSpec) -> str:
    """A sentence on the period the dataset covers, from its date column's range."""
    date = date_column(spec)
    years = covered_years(date)
    if years is None:
        return ""
    first, last = years
    span = str(first) if first == last else f"{first}-{last}"
    return f"Covers {span} ({date.name} from {str(date.min)[:10]} to {str(date.max)[:10]})."


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
            for part in (spec.description.strip(), coverage(spec), f"Columns: {columns}.")
            if part
        )
        lines.append(f"- {spec.slug} ({spec.title}): {about}")
    example = next(
        (call for spec in specs for call in example_calls(spec) if "__gte=" in call.url), None
    )
    lines += [
        "",
        "How to call:",
        "- For totals, counts, averages or any 'by X' question, call aggregate_<dataset> with "
        "group_by and metrics (sum:col, avg:col, min:col, max:col, count, count_distinct:col) "
        "instead of reading rows and adding them up yourself.",
        "- Filter dates with <column>__gte and <column>__lte (YYYY-MM-DD): Q2 2024 is "
        "__gte=2024-04-01 and __lte=2024-06-30. <column>__year, <column>__quarter (1-4) and "
        "<column>__month (1-12) work too. Check the years a dataset covers before you answer.",
        "- Use list_<dataset>_rows for individual records: filter with column parameters, sort "
        "with ordering (-col for descending), choose columns with fields. When a response has "
        "a next URL, call again with its offset to get more; if truncated is true, say so.",
        "- Use describe_dataset to learn a dataset's columns, valid values and ranges.",
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
