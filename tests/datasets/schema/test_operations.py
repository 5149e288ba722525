"""Each dataset's concrete operations, built from DatasetSpec objects by hand (no database)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from datasets.engine.errors import QueryError
from datasets.engine.parse import parse_aggregate, parse_rows
from datasets.engine.spec import ColumnSpec, DatasetSpec
from datasets.schema.guide import example_calls, gpt_instructions
from datasets.schema.operations import aggregate_component, dataset_components, dataset_paths
from datasets.schema.rules import MAX_DESCRIPTION, MAX_PARAMETER_DESCRIPTION

SEED_Q2 = (
    "/api/v1/datasets/sales/aggregate/?order_date__gte=2024-04-01&order_date__lte=2024-06-30"
    "&group_by=product&metrics=sum:revenue&ordering=-sum_revenue"
)


def sales_spec(**changes) -> DatasetSpec:
    columns = (
        ColumnSpec("order_id", "order_id", "integer", "Order number.", min=1, max=900),
        ColumnSpec(
            "order_date", "order_date", "date", "Order day.", min="2023-01-01", max="2024-12-31"
        ),
        ColumnSpec(
            "product", "product", "string", enum=("Product A", "Product B"), searchable=True
        ),
        ColumnSpec("revenue", "revenue", "number", "Revenue in USD.", min=1.5, max=900.0),
        ColumnSpec("paid", "paid", "boolean"),
        ColumnSpec("seen_at", "seen_at", "datetime", filterable=False, sortable=False),
        ColumnSpec("email", "email", "string", pii="mask"),
        ColumnSpec("team", "team", "string", pii="hide"),
    )
    options = dict(
        id=1,
        slug="sales",
        title="Sales",
        description="Orders by product.",
        table="data",
        primary_key="order_id",
        all_columns=columns,
    )
    options.update(changes)
    return DatasetSpec(**options)


def _get(paths: dict, path: str) -> dict:
    return paths[path]["get"]


def _parameters(operation: dict) -> dict[str, dict]:
    return {parameter["name"]: parameter for parameter in operation["parameters"]}


def test_dataset_with_a_primary_key_has_three_operations():
    paths = dataset_paths(sales_spec())
    assert [item["get"]["operationId"] for item in paths.values()] == [
        "list_sales_rows",
        "get_sales_row",
        "aggregate_sales",
    ]
    assert list(paths) == [
        "/api/v1/datasets/sales/rows/",
        "/api/v1/datasets/sales/rows/{pk}/",
        "/api/v1/datasets/sales/aggregate/",
    ]


def test_dataset_without_a_primary_key_has_no_row_operation():
    paths = dataset_paths(sales_spec(primary_key=None))
    assert [item["get"]["operationId"] for item in paths.values()] == [
        "list_sales_rows",
        "aggregate_sales",
    ]


def test_row_by_key_parameter_is_typed_like_the_key():
    operation = _get(dataset_paths(sales_spec()), "/api/v1/datasets/sales/rows/{pk}/")
    assert operation["parameters"] == [
        {
            "name": "pk",
            "in": "path",
            "required": True,
            "schema": {"type": "integer"},
        }
    ]


FILTERS = [
    # (parameter, declared schema) on list_sales_rows
    ("order_id", {"type": "integer"}),
    ("order_id__gte", {"type": "integer"}),
    ("order_id__in", {"type": "string"}),
    ("order_date", {"type": "string", "format": "date"}),
    ("order_date__gte", {"type": "string", "format": "date"}),
    ("order_date__lte", {"type": "string", "format": "date"}),
    ("order_date__year", {"type": "integer", "minimum": 2023, "maximum": 2024}),
    ("order_date__quarter", {"type": "integer", "minimum": 1, "maximum": 4}),
    ("order_date__month", {"type": "integer", "minimum": 1, "maximum": 12}),
    ("product", {"type": "string", "enum": ["Product A", "Product B"]}),
    ("product__in", {"type": "string"}),
    ("product__isnull", {"type": "boolean"}),
    ("revenue__lt", {"type": "number"}),
    ("paid", {"type": "boolean"}),  # no enum of booleans
    ("paid__ne", {"type": "boolean"}),
    ("revenue__gte", {"type": "number"}),
]


@pytest.mark.parametrize(("name", "schema"), FILTERS)
def test_filter_parameter_is_declared_with_its_type(name, schema):
    declared = _parameters(_get(dataset_paths(sales_spec()), "/api/v1/datasets/sales/rows/"))
    assert declared[name]["schema"] == schema
    assert declared[name]["in"] == "query"


NOT_DECLARED = [
    "paid__gt",  # booleans have no order
    "product__gte",  # nor strings (the engine's operators for strings)
    "revenue__contains",  # text operators only for strings
    "product__contains",  # nor on a column with published values
    "revenue__ne",  # "every revenue but 19.99" is no question
    "seen_at",  # not filterable
    "email",  # masked: only count_distinct
    "team",  # hidden
    "team__isnull",
    "format",  # CSV is for people, not for a GPT
]


@pytest.mark.parametrize("name", NOT_DECLARED)
def test_parameter_the_engine_refuses_is_not_declared(name):
    for path in ("/api/v1/datasets/sales/rows/", "/api/v1/datasets/sales/aggregate/"):
        assert name not in _parameters(_get(dataset_paths(sales_spec()), path))


def test_every_filter_the_engine_accepts_is_declared():
    spec = sales_spec()
    for path in ("/api/v1/datasets/sales/rows/", "/api/v1/datasets/sales/aggregate/"):
        declared = _parameters(_get(dataset_paths(spec), path))
        for column in spec.columns:
            for operator in column.operators:
                name = column.name if operator == "eq" else f"{column.name}__{operator}"
                assert name in declared, (path, name)


LIST_VALUES = [
    # (operation, parameter, value, accepted by the engine, the names its description lists)
    ("list_sales_rows", "ordering", "-order_date,order_id", True, ["email"]),
    ("list_sales_rows", "ordering", "-email", False, []),  # masked: not sortable
    ("list_sales_rows", "ordering", "seen_at", False, []),  # not sortable
    ("list_sales_rows", "fields", "order_id,email", True, ["order_id", "email"]),
    ("list_sales_rows", "fields", "team", False, []),  # hidden
    (
        "aggregate_sales",
        "group_by",
        "product,order_date__quarter",
        True,
        ["any column", "__quarter"],
    ),
    ("aggregate_sales", "group_by", "order_date__week", True, ["__week (2024-W14)"]),
    ("aggregate_sales", "group_by", "email", False, []),
    ("aggregate_sales", "group_by", "product__year", False, []),
    ("aggregate_sales", "metrics", "sum:revenue,count,count_distinct:email", True, ["sum:col"]),
    ("aggregate_sales", "metrics", "max:order_date,avg:revenue", True, ["max:col"]),
    ("aggregate_sales", "metrics", "sum:email", False, []),  # masked: count_distinct only
    ("aggregate_sales", "metrics", "sum:product", False, []),  # no sum of strings
    ("aggregate_sales", "metrics", "min:paid", False, []),
    ("aggregate_sales", "metrics", "sum:order_id", False, []),  # a sum of identifiers
    ("aggregate_sales", "ordering", "-sum_revenue,product", True, ["'-'"]),
]


@pytest.mark.parametrize(("operation_id", "name", "value", "accepted", "listed"), LIST_VALUES)
def test_comma_separated_list_is_a_described_string(operation_id, name, value, accepted, listed):
    spec = sales_spec()
    paths = dataset_paths(spec)
    operation = next(
        item["get"] for item in paths.values() if item["get"]["operationId"] == operation_id
    )
    parameter = _parameters(operation)[name]
    assert parameter["schema"] == {"type": "string"} or parameter["schema"]["type"] == "string"
    assert "pattern" not in parameter["schema"]  # the description says it once
    assert all(text in parameter["description"] for text in listed)
    params = {name: value}
    if name == "ordering" and operation_id == "aggregate_sales":
        params.update(group_by="product", metrics="sum:revenue")
    parse = parse_rows if operation_id.startswith("list_") else parse_aggregate
    try:
        parse(spec, params)
    except QueryError:
        assert not accepted
    else:
        assert accepted


def test_seed_q2_call_is_assembled_only_from_declared_parameters():
    operation = _get(dataset_paths(sales_spec()), "/api/v1/datasets/sales/aggregate/")
    declared = _parameters(operation)
    path, _, query = SEED_Q2.partition("?")
    assert path == "/api/v1/datasets/sales/aggregate/"
    for name, value in parse_qsl(query):
        parameter = declared[name]
        schema = parameter["schema"]
        if schema.get("format") == "date":
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)


def test_example_q2_call_is_the_seed_call_shape():
    calls = example_calls(sales_spec())
    assert calls[0].operation_id == "aggregate_sales"
    assert calls[0].url == SEED_Q2
    assert "revenue" in calls[0].question and "product" in calls[0].question


def test_example_calls_use_declared_parameters_only():
    spec = sales_spec()
    paths = dataset_paths(spec)
    by_id = {item["get"]["operationId"]: item["get"] for item in paths.values()}
    for call in example_calls(spec):
        declared = _parameters(by_id[call.operation_id])
        for name, _ in parse_qsl(urlsplit(call.url).query):
            assert name in declared, (call.url, name)


def test_datetime_column_is_filtered_by_year_and_quarter_in_examples():
    spec = sales_spec(
        all_columns=(
            ColumnSpec(
                "at", "at", "datetime", min="2022-02-01T10:00:00", max="2023-01-31T00:00:00"
            ),
            ColumnSpec("amount", "amount", "number"),
        ),
        primary_key=None,
    )
    first = example_calls(spec)[0]
    # The data stops in January 2023: the latest Q2 with data is 2022's.
    assert first.url == (
        "/api/v1/datasets/sales/aggregate/?at__year=2022&at__quarter=2"
        "&group_by=at__month&metrics=sum:amount&ordering=-sum_amount"
    )


def test_row_schema_is_typed_nullable_and_lists_ranges_and_enums():
    row = dataset_components(sales_spec())["sales_row"]
    assert row["type"] == "object"
    properties = row["properties"]
    assert list(properties) == [
        "order_id", "order_date", "product", "revenue", "paid", "seen_at", "email",
    ]  # fmt: skip
    assert properties["order_id"]["type"] == "integer"  # the key is never null
    assert properties["order_date"]["type"] == ["string", "null"]
    assert properties["order_date"]["format"] == "date"
    # Descriptions and values are said once, on the filters; an unfilterable column keeps its own.
    assert "description" not in properties["order_date"] and "enum" not in properties["product"]
    assert properties["revenue"]["type"] == ["number", "null"]
    assert properties["paid"]["type"] == ["boolean", "null"]
    assert properties["seen_at"]["format"] == "date-time"
    assert properties["email"]["type"] == ["string", "null"]
    assert "masked" in properties["email"]["description"]


def test_aggregate_page_says_how_many_groups_and_whether_cut():
    operation = _get(dataset_paths(sales_spec()), "/api/v1/datasets/sales/aggregate/")
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AggregatePage"
    }
    page = aggregate_component()
    assert set(page["required"]) == {"count", "next", "truncated", "results"}
    assert page["properties"]["results"]["items"]["properties"]["count"] == {"type": "integer"}
    assert "offset" in _parameters(operation)


def test_the_dataset_description_reaches_the_aggregate_operation():
    hint = "Sum revenue by product or order_date quarter."
    spec = sales_spec(description="Orders by product, one row per order line. " + hint)
    operation = _get(dataset_paths(spec), "/api/v1/datasets/sales/aggregate/")
    assert hint in operation["description"]


def test_long_texts_are_shortened_to_the_limits():
    spec = sales_spec(
        title="T" * 200,
        description="word " * 60,
        all_columns=(ColumnSpec("x" * 60, "x", "number", description="d " * 150, min=1, max=2),),
        primary_key=None,
    )
    for item in dataset_paths(spec).values():
        operation = item["get"]
        assert len(operation["summary"]) <= MAX_DESCRIPTION
        assert len(operation["description"]) <= MAX_DESCRIPTION
        assert all(
            len(parameter.get("description", "")) <= MAX_PARAMETER_DESCRIPTION
            for parameter in operation["parameters"]
        )


def test_descriptions_are_whole_sentences_within_their_budget():
    sentences = [f"Sentence number {number} says one thing about the data." for number in range(9)]
    spec = sales_spec(
        description=" ".join(sentences[:5]),
        all_columns=tuple(
            ColumnSpec(f"column_{number:02d}_with_a_long_name", f"c{number}", "number")
            for number in range(60)
        ),
        primary_key=None,
    )
    for item in dataset_paths(spec).values():
        operation = item["get"]
        assert "…" not in operation["description"]
        assert (
            operation["description"].endswith((".", "/")) or "Example" in operation["description"]
        )
        for parameter in operation["parameters"]:
            text = parameter.get("description", "")
            assert len(text) <= MAX_PARAMETER_DESCRIPTION and "…" not in text, parameter["name"]


def test_instructions_name_each_dataset_and_its_years():
    other = sales_spec(id=2, slug="stock", title="Stock", description="Stock levels.")
    text = gpt_instructions([sales_spec(), other])
    assert "- sales (Sales): Orders by product. Covers 2023-2024" in text
    assert "- stock (Stock): Stock levels." in text
    assert "aggregate_<dataset>" in text and "next" in text
    assert "__gte" in text and "__lte" in text


def test_the_row_by_key_example_is_a_key_the_rows_hold_or_none():
    row = "/api/v1/datasets/sales/rows/{pk}/"
    described = _get(dataset_paths(sales_spec()), row)["description"]
    assert "Example: GET /api/v1/datasets/sales/rows/1/" in described
    texts = sales_spec(
        primary_key="code",
        all_columns=(ColumnSpec("code", "code", "string"), ColumnSpec("n", "n", "integer")),
    )
    described = _get(dataset_paths(texts), row)["description"]
    assert "Example" not in described and "KEY" not in described  # a made-up key answers 404
    unranged = sales_spec(all_columns=(ColumnSpec("order_id", "order_id", "integer"),))
    assert "Example" not in _get(dataset_paths(unranged), row)["description"]


@pytest.mark.parametrize(
    ("columns", "promised", "absent"),
    [
        (
            (ColumnSpec("n", "n", "integer", min=1, max=9, null_count=0),),
            ["col=value", "__gt", "__in=a,b"],
            ["__icontains", "__isnull", "__year", "text"],
        ),
        (
            (
                ColumnSpec("note", "note", "string", null_count=3),
                ColumnSpec("day", "day", "date", min="2024-01-01", max="2024-12-31", null_count=0),
            ),
            ["text __icontains", "__isnull=true", "dates __year", "__month"],
            ["__contains", "__startswith"],  # one text operator stands for the others
        ),
    ],
)
def test_the_filter_grammar_sentence_promises_only_operators_some_column_takes(
    columns, promised, absent
):
    spec = sales_spec(primary_key=None, all_columns=columns)
    described = _get(dataset_paths(spec), "/api/v1/datasets/sales/rows/")["description"]
    sentence = next(part for part in described.split(". ") if part.startswith("Filters:"))
    taken = {name for column in spec.columns for name in column.operators}
    for phrase in promised:
        assert phrase in sentence
    for phrase in absent:
        assert phrase not in sentence
    assert ("__isnull" in sentence) == ("isnull" in taken)
