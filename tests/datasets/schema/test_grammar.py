"""The schema and the engine read one grammar: every declared call parses, every call the engine
accepts is declared, the caps included; a new operator is one record."""

from __future__ import annotations

import dataclasses
import re

import pytest

from datasets.engine import grammar
from datasets.engine.compile import compile_rows
from datasets.engine.errors import QueryError
from datasets.engine.parse import parse_aggregate, parse_rows
from datasets.engine.spec import ColumnSpec, DatasetSpec, SourceSpec
from datasets.schema.operations import dataset_paths

ROWS = "/api/v1/datasets/shop/rows/"
AGGREGATE = "/api/v1/datasets/shop/aggregate/"


def shop(**changes) -> DatasetSpec:
    """Every kind of column: key, dates, categories, free text, measures, flags, personal data."""
    columns = (
        ColumnSpec("order_id", "order_id", "integer", "Order number.", min=1, max=900, null_count=0),
        ColumnSpec("day", "day", "date", min="2023-01-01", max="2024-12-31", null_count=0),
        ColumnSpec("seen_at", "seen_at", "datetime", min="2023-01-01T00:00:00", max="2024-12-31T00:00:00"),
        ColumnSpec("region", "region", "string", enum=("APAC", "EU", "US"), null_count=0),
        ColumnSpec("size", "size", "integer", enum=(1, 2, 3), min=1, max=3, null_count=4),
        ColumnSpec("note", "note", "string", searchable=True, null_count=7),
        ColumnSpec("revenue", "revenue", "number", min=1.5, max=900.0, null_count=0),
        ColumnSpec("paid", "paid", "boolean", enum=(False, True)),
        ColumnSpec("closed", "closed", "string", filterable=False, sortable=False),
        ColumnSpec("email", "email", "string", pii="mask"),
        ColumnSpec("customer", "customer", "string", pii="hash"),
        ColumnSpec("team", "team", "string", pii="hide"),
    )  # fmt: skip
    options = dict(
        id=7,
        slug="shop",
        title="Shop",
        description="Orders of the shop.",
        table="data",
        primary_key="order_id",
        all_columns=columns,
    )
    options.update(changes)
    return DatasetSpec(**options)


SQL_SOURCE = SourceSpec(
    id=1, kind="postgresql", url="postgresql://x/y", statement_timeout=5, stamp=""
)
SPECS = {
    "upload": shop(),
    "sql source": shop(source=SQL_SOURCE),
    "no primary key": shop(primary_key=None),
}


def _declared(spec: DatasetSpec, path: str) -> dict[str, dict]:
    operation = dataset_paths(spec)[path]["get"]
    return {parameter["name"]: parameter for parameter in operation["parameters"]}


def _sample(schema: dict) -> str:
    """A value the declared schema allows, as a client would send it."""
    if "enum" in schema:
        return (
            str(schema["enum"][-1]).lower()
            if schema["type"] == "boolean"
            else str(schema["enum"][0])
        )
    if "minimum" in schema and schema["type"] == "integer":
        return str(schema.get("maximum", schema["minimum"]))
    kind = schema["type"]
    if kind == "boolean":
        return "true"
    if kind == "integer":
        return "3"
    if kind == "number":
        return "19.5"
    if schema.get("format") == "date":
        return "2024-04-01"
    if schema.get("format") == "date-time":
        return "2024-04-01T09:30:00"
    return "abc"


def _parse(spec: DatasetSpec, path: str, params: dict):
    parse = parse_rows if path == ROWS else parse_aggregate
    return parse(spec, params, published=spec)


def _refused(spec: DatasetSpec, path: str, params: dict) -> QueryError:
    with pytest.raises(QueryError) as caught:
        _parse(spec, path, params)
    return caught.value


@pytest.mark.parametrize("path", [ROWS, AGGREGATE])
@pytest.mark.parametrize("kind", SPECS)
def test_every_declared_filter_parses(kind, path):
    spec = SPECS[kind]
    reserved = {"search", "ordering", "fields", "limit", "offset", "group_by", "metrics"}
    for name, parameter in _declared(spec, path).items():
        if name in reserved:
            continue
        value = _sample(parameter["schema"])
        column, _, operator = name.partition("__")
        if operator in ("in", "ne"):  # their values are the column's, declared on its parameter
            element = _sample(_declared(spec, path)[column]["schema"])
            value = f"{element},{element}" if operator == "in" else element
        _parse(spec, path, {name: value})  # no error


@pytest.mark.parametrize("path", [ROWS, AGGREGATE])
@pytest.mark.parametrize("kind", SPECS)
def test_every_filter_the_engine_accepts_is_declared(kind, path):
    spec = SPECS[kind]
    declared = _declared(spec, path)
    for column in spec.all_columns:
        for record in grammar.OPERATORS.values():
            name = record.parameter(column.name)
            value = {grammar.Operand.FLAG: "true", grammar.Operand.PART: "1"}.get(
                record.operand, "1" if column.type in grammar.NUMERIC else "x"
            )
            if column.type in grammar.DATED and record.operand in ("value", "values"):
                value = "2024-01-01"
            if column.enum and record.operand in ("value", "values"):
                value = (
                    str(column.enum[0]).lower() if column.type == "boolean" else str(column.enum[0])
                )
            if record.name == "year":
                value = "2024"
            try:
                _parse(spec, path, {name: value})
            except QueryError as error:
                assert name not in declared, (name, error.message)
            else:
                assert name in declared, name


def _columns_named(spec: DatasetSpec, phrase: str) -> list[str]:
    """The columns a phrase names: "any column", "any column except a, b", or "a, b"."""
    names = [column.name for column in spec.columns]
    if phrase == "any column":
        return names
    if phrase.startswith("any column except "):
        excluded = phrase[len("any column except ") :].split(", ")
        return [name for name in names if name not in excluded]
    return phrase.split(", ")


def _metrics_declared(spec: DatasetSpec) -> set[str]:
    """The metric calls the `metrics` description lists ("sum:col, avg:col for a, b; ...")."""
    text = _declared(spec, AGGREGATE)["metrics"]["description"]
    listed = re.search(r"count; (.*?)\. For example", text).group(1)
    calls = {"count"}
    for phrase in listed.split("; "):
        functions, _, columns = phrase.partition(" for ")
        chosen = _columns_named(spec, columns)
        for function in functions.split(", "):
            calls |= {function.replace(":col", f":{name}") for name in chosen}
    return calls


@pytest.mark.parametrize("kind", SPECS)
def test_the_metrics_the_engine_accepts_are_the_declared_ones(kind):
    spec = SPECS[kind]
    accepted = {"count"} if parse_aggregate(spec, {"metrics": "count"}) else set()
    for record in grammar.METRICS_BY_NAME.values():
        for column in spec.all_columns:
            call = record.call(column.name) if record.types else record.call()
            try:
                parse_aggregate(spec, {"metrics": call})
            except QueryError:
                continue
            accepted.add(call)
    assert accepted == _metrics_declared(spec)
    if spec.primary_key:
        assert "sum:order_id" not in accepted and "max:order_id" in accepted


@pytest.mark.parametrize("kind", SPECS)
def test_the_group_keys_the_engine_accepts_are_the_declared_ones(kind):
    spec = SPECS[kind]
    description = _declared(spec, AGGREGATE)["group_by"]["description"]
    candidates = [
        key
        for column in spec.all_columns
        for key in (column.name, *(f"{column.name}__{bucket}" for bucket in grammar.BUCKETS))
    ]
    plain = re.search(r"keys: (.*?)\.( Date buckets|$)", description).group(1)
    for key in candidates:
        column, _, bucket = key.partition("__")
        declared = column in _columns_named(spec, plain)
        if bucket:
            dated = description.split("Date buckets of ")[1].split(":")[0].split(", ")
            declared = column in dated and f"__{bucket} (" in description
        try:
            parse_aggregate(spec, {"group_by": key})
        except QueryError:
            assert not declared, key
        else:
            assert declared, key


def test_caps_are_declared_and_enforced():
    spec = shop()
    aggregate = _declared(spec, AGGREGATE)
    assert f"at most {grammar.MAX_GROUP_KEYS} keys" in aggregate["group_by"]["description"]
    assert f"at most {grammar.MAX_METRICS}" in aggregate["metrics"]["description"]
    for path in (ROWS, AGGREGATE):  # said once per operation, not on each __in parameter
        description = dataset_paths(spec)[path]["get"]["description"]
        assert f"at most {grammar.MAX_IN_VALUES}" in description, description
        assert "description" not in _declared(spec, path)["size__in"]
    assert aggregate["limit"]["schema"]["maximum"] == grammar.MAX_AGGREGATE_LIMIT
    keys = ["order_id", "day", "region", "size", "note", "revenue", "paid"]
    parse_aggregate(spec, {"group_by": ",".join(keys[: grammar.MAX_GROUP_KEYS])})
    assert _refused(spec, AGGREGATE, {"group_by": ",".join(keys[: grammar.MAX_GROUP_KEYS + 1])})
    metrics = [
        f"{f}:{c}"
        for c in ("revenue", "size", "order_id")
        for f in ("min", "max", "count_distinct")
    ]
    metrics += ["sum:revenue", "avg:revenue", "sum:size", "avg:size", "count"]
    parse_aggregate(spec, {"metrics": ",".join(metrics[: grammar.MAX_METRICS])})
    assert _refused(spec, AGGREGATE, {"metrics": ",".join(metrics[: grammar.MAX_METRICS + 1])})
    parse_rows(spec, {"revenue__in": ",".join(["1"] * grammar.MAX_IN_VALUES)})
    assert _refused(spec, ROWS, {"revenue__in": ",".join(["1"] * (grammar.MAX_IN_VALUES + 1))})
    parse_aggregate(spec, {"limit": str(grammar.MAX_AGGREGATE_LIMIT)})
    assert _refused(spec, AGGREGATE, {"limit": str(grammar.MAX_AGGREGATE_LIMIT + 1)})


def test_declared_year_range_is_the_range_the_engine_accepts():
    upload = shop()
    declared = _declared(upload, ROWS)["day__year"]["schema"]
    assert (declared["minimum"], declared["maximum"]) == (2023, 2024)
    parse_rows(upload, {"day__year": "2023"}, published=upload)
    error = _refused(upload, ROWS, {"day__year": "24"})
    assert error.code == "invalid_value" and "2024" in error.message
    # A SQL source's rows change after its statistics are taken: any year is declared.
    source = shop(source=SQL_SOURCE)
    assert _declared(source, ROWS)["day__year"]["schema"]["maximum"] == grammar.YEAR_RANGE[1]
    parse_rows(source, {"day__year": "2031"}, published=source)


def test_type_appropriate_operators_only():
    declared = _declared(shop(), ROWS)
    assert "region__in" in declared and "region__contains" not in declared  # published values
    assert "region__isnull" not in declared  # no nulls
    assert "size__isnull" in declared and "note__isnull" in declared  # some nulls
    assert "seen_at__isnull" in declared  # unknown: kept
    assert "note__icontains" in declared and "note__startswith" in declared
    assert "revenue__ne" not in declared and "region__ne" in declared and "paid__ne" in declared
    assert "enum" not in declared["size__gte"]["schema"]  # no enum on comparisons
    assert declared["paid"]["schema"] == {"type": "boolean"}  # no boolean enum
    assert declared["size__in"]["schema"] == {"type": "string"}
    assert "__in=a,b" in dataset_paths(shop())[ROWS]["get"]["description"]


def test_withheld_statistics_keep_the_operators(monkeypatch):
    """A row filter's withheld or recomputed statistics never change which calls are declared."""
    spec = shop()
    withheld = dataclasses.replace(
        spec,
        all_columns=tuple(
            dataclasses.replace(column, enum=None, min=None, max=None, null_count=None)
            for column in spec.all_columns
        ),
    )
    for column, other in zip(spec.columns, withheld.columns, strict=True):
        assert column.operators == other.operators, column.name


def test_a_new_operator_is_one_record(monkeypatch):
    record = grammar.Operator(
        "endswith",
        ("string",),
        grammar.Operand.TEXT,
        lambda dialect, expr, value: expr.endswith(value, autoescape=True),
        "{col} ends with the text",
        free_text=True,
    )
    monkeypatch.setitem(grammar.OPERATORS, "endswith", record)
    spec = shop()

    assert "note__endswith" in _declared(spec, ROWS)
    assert "note__endswith" in _declared(spec, AGGREGATE)
    assert "region__endswith" not in _declared(spec, ROWS)
    query = parse_rows(spec, {"note__endswith": "x"})
    assert query.filters[0].op == "endswith"
    assert "LIKE" in str(compile_rows(spec, query)).upper()
    assert _refused(spec, ROWS, {"region__endswith": "U"}).code == "operator_not_allowed"
