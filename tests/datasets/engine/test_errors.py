"""Every error code the engine gives for a query a client can fix, on every backend."""

from __future__ import annotations

import dataclasses

import pytest

from datasets.engine.errors import QueryError
from datasets.engine.parse import MAX_GROUP_KEYS, MAX_IN_VALUES, parse_aggregate
from datasets.engine.spec import ColumnSpec
from tests.datasets.engine.sales_table import COLUMNS, MAX_PAGE, dataset, get_aggregate, get_rows

# The codes of QueryError the engine raises (datasets/engine/parse.py, values.py, errors.py).
ENGINE_CODES = {
    "unknown_parameter",
    "unknown_column",
    "unknown_operator",
    "operator_not_allowed",
    "invalid_value",
    "not_filterable",
    "not_sortable",
    "not_searchable",
    "pii_protected",
    "unknown_metric",
    "metric_not_allowed",
    "invalid_bucket",
    "invalid_limit",
    "invalid_offset",
    "unknown_ordering",
}

ROWS_ERRORS = [
    ("colour=red", "unknown_parameter"),
    ("regoin=EU", "unknown_parameter"),
    ("secret=x", "unknown_parameter"),
    ("group_by=region", "unknown_parameter"),
    ("regoin__in=EU", "unknown_column"),
    ("secret__eq=x", "unknown_column"),
    ("__eq=x", "unknown_column"),
    ("ordering=nope", "unknown_column"),
    ("ordering=-secret", "unknown_column"),
    ("ordering=-", "unknown_column"),
    ("fields=id,nope", "unknown_column"),
    ("fields=secret", "unknown_column"),
    ("region__like=E", "unknown_operator"),
    ("qty__between=1,2", "unknown_operator"),
    ("day__week=14", "unknown_operator"),
    ("day__day=3", "unknown_operator"),
    ("region__gt=E", "operator_not_allowed"),
    ("region__year=2024", "operator_not_allowed"),
    ("qty__contains=1", "operator_not_allowed"),
    ("price__startswith=1", "operator_not_allowed"),
    ("active__in=true,false", "operator_not_allowed"),
    ("active__gt=false", "operator_not_allowed"),
    ("moment__icontains=2024", "operator_not_allowed"),
    ("qty=abc", "invalid_value"),
    ("qty=2.5", "invalid_value"),
    ("qty=9223372036854775808", "invalid_value"),
    ("price=abc", "invalid_value"),
    ("price=NaN", "invalid_value"),
    ("price=1e999", "invalid_value"),
    ("price=inf", "invalid_value"),
    ("active=maybe", "invalid_value"),
    ("day=2024-02-30", "invalid_value"),
    ("day=30/06/2024", "invalid_value"),
    ("day=", "invalid_value"),
    ("moment__lte=yesterday", "invalid_value"),
    ("qty__isnull=perhaps", "invalid_value"),
    ("day__year=abc", "invalid_value"),
    ("day__year=0", "invalid_value"),
    ("day__quarter=5", "invalid_value"),
    ("day__quarter=0", "invalid_value"),
    ("day__month=13", "invalid_value"),
    ("moment__month=0", "invalid_value"),
    ("qty__in=", "invalid_value"),
    ("qty__in=1,,2", "invalid_value"),
    ("qty__in=" + ",".join(["1"] * (MAX_IN_VALUES + 1)), "invalid_value"),
    ("label__contains=", "invalid_value"),
    ("label=" + "x" * 1001, "invalid_value"),
    ("ref=R001", "not_filterable"),
    ("ref__startswith=R", "not_filterable"),
    ("ordering=ref", "not_sortable"),
    ("ordering=id,-ref", "not_sortable"),
    ("email=user1@example.com", "pii_protected"),
    ("email__isnull=true", "pii_protected"),
    ("customer__startswith=C", "pii_protected"),
    ("ordering=email", "pii_protected"),
    ("ordering=-customer", "pii_protected"),
    ("limit=0", "invalid_limit"),
    (f"limit={MAX_PAGE + 1}", "invalid_limit"),
    ("limit=-1", "invalid_limit"),
    ("limit=abc", "invalid_limit"),
    ("limit=1.5", "invalid_limit"),
    ("limit=", "invalid_limit"),
    ("offset=-1", "invalid_offset"),
    ("offset=x", "invalid_offset"),
    ("offset=", "invalid_offset"),
    ("offset=99999999999999999999", "invalid_offset"),
]

AGGREGATE_ERRORS = [
    ("colour=red", "unknown_parameter"),
    ("fields=region", "unknown_parameter"),
    ("group_by=nope", "unknown_column"),
    ("group_by=secret", "unknown_column"),
    ("metrics=sum:nope", "unknown_column"),
    ("metrics=count_distinct:secret", "unknown_column"),
    ("region__like=E&group_by=region", "unknown_operator"),
    ("region__gt=E", "operator_not_allowed"),
    ("qty=abc", "invalid_value"),
    (
        "group_by="
        + ",".join(
            ["region", "qty", "day", "moment", "active", "label", "notes"][: MAX_GROUP_KEYS + 1]
        ),
        "invalid_value",
    ),
    (
        "metrics="
        + ",".join(
            f"{f}:{c}"
            for f in ("min", "max", "count_distinct")
            for c in ("qty", "price", "day", "moment", "region")
        ),
        "invalid_value",
    ),
    ("ref=R001&group_by=region", "not_filterable"),
    ("email=x", "pii_protected"),
    ("metrics=sum:email", "pii_protected"),
    ("metrics=min:customer", "pii_protected"),
    ("metrics=max:email", "pii_protected"),
    ("group_by=email&ordering=email", "pii_protected"),
    ("group_by=customer&ordering=-customer", "pii_protected"),
    ("metrics=median:qty", "unknown_metric"),
    ("metrics=sum", "unknown_metric"),
    ("metrics=count:qty", "unknown_metric"),
    ("metrics=:qty", "unknown_metric"),
    ("metrics=sum:label", "metric_not_allowed"),
    ("metrics=avg:day", "metric_not_allowed"),
    ("metrics=sum:active", "metric_not_allowed"),
    ("metrics=min:active", "metric_not_allowed"),
    ("group_by=day__hour", "invalid_bucket"),
    ("group_by=day__quarters", "invalid_bucket"),
    ("group_by=qty__year", "invalid_bucket"),
    ("group_by=label__month", "invalid_bucket"),
    ("group_by=region&ordering=nope", "unknown_ordering"),
    ("group_by=region&ordering=sum_qty", "unknown_ordering"),
    ("group_by=region&ordering=qty", "unknown_ordering"),
    ("limit=0", "invalid_limit"),
    ("limit=1001", "invalid_limit"),
    ("limit=ten", "invalid_limit"),
]


def _error(call) -> QueryError:
    with pytest.raises(QueryError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(("query", "code"), ROWS_ERRORS, ids=[q[:60] for q, _ in ROWS_ERRORS])
def test_rows_error_code(sales, query, code):
    error = _error(lambda: get_rows(sales, query))

    assert (error.code, error.status) == (code, 400)
    assert 0 < len(error.message) < 2000


@pytest.mark.parametrize(
    ("query", "code"), AGGREGATE_ERRORS, ids=[q[:60] for q, _ in AGGREGATE_ERRORS]
)
def test_aggregate_error_code(sales, query, code):
    error = _error(lambda: get_aggregate(sales, query))

    assert (error.code, error.status) == (code, 400)
    assert 0 < len(error.message) < 2000


def test_no_searchable_column_is_not_searchable(sales):
    # Email stays searchable but masked: a protected column does not count.
    columns = tuple(
        column if column.pii != "none" else dataclasses.replace(column, searchable=False)
        for column in COLUMNS
    )
    spec = dataclasses.replace(sales, all_columns=columns)

    assert _error(lambda: get_rows(spec, "search=x")).code == "not_searchable"
    assert _error(lambda: get_aggregate(spec, "search=x")).code == "not_searchable"


def test_every_engine_error_code_is_covered():
    covered = {code for _, code in ROWS_ERRORS + AGGREGATE_ERRORS} | {"not_searchable"}

    assert covered == ENGINE_CODES


@pytest.mark.parametrize(
    ("query", "hint"),
    [
        ("regoin=EU", "Did you mean 'region'?"),
        ("regoin__in=EU", "Did you mean 'region'?"),
        ("label__startwith=E", "Did you mean 'startswith'?"),
        ("ordering=prise", "Did you mean 'price'?"),
        ("fields=labl", "Did you mean 'label'?"),
    ],
)
def test_rows_errors_name_the_closest_valid_choice(sales, query, hint):
    message = _error(lambda: get_rows(sales, query)).message

    assert hint in message
    assert "secret" not in message  # a hidden column is never suggested


@pytest.mark.parametrize(
    ("query", "hint"),
    [
        ("metrics=smu:qty", "Did you mean 'sum'?"),
        ("group_by=day__quater", "Did you mean 'quarter'?"),
        ("group_by=region&metrics=sum:qty&ordering=-sum_qt", "Did you mean 'sum_qty'?"),
    ],
)
def test_aggregate_errors_name_the_closest_valid_choice(sales, query, hint):
    assert hint in _error(lambda: get_aggregate(sales, query)).message


def test_valid_forms_are_listed_for_an_operator_that_does_not_apply(sales):
    message = _error(lambda: get_rows(sales, "label__gt=E")).message

    assert "label__in" in message and "label__contains" in message


def test_a_column_with_published_values_takes_no_substring_operators(sales):
    error = _error(lambda: get_rows(sales, "region__contains=E"))

    assert error.code == "operator_not_allowed"
    assert "region__in" in error.message and "contains" not in error.message.split(":")[1]


def test_count_distinct_is_allowed_on_protected_columns(sales):
    result = get_aggregate(sales, "metrics=count_distinct:email,count_distinct:customer")

    assert set(result[0]) == {"count_distinct_email", "count_distinct_customer"}


def test_a_spec_copied_with_other_columns_leaves_the_original_alone(sales):
    copy = dataclasses.replace(sales, all_columns=(ColumnSpec("other", "other", "string"),))

    assert copy.column("other") is not None and copy.column("region") is None
    assert sales.column("other") is None and sales.column("region") is not None


def test_a_group_key_named_like_a_metric_result_is_refused():
    spec = dataset(
        all_columns=(ColumnSpec("count", "count", "integer"), ColumnSpec("id", "id", "integer"))
    )
    with pytest.raises(QueryError) as raised:
        parse_aggregate(spec, {"group_by": "count", "metrics": "count"})
    assert raised.value.code == "invalid_value"
    assert "count" in raised.value.message


def test_a_sum_of_the_primary_key_is_refused_as_the_schema_hides_it(sales):
    error = _error(lambda: get_aggregate(sales, "metrics=sum:id"))

    assert error.code == "metric_not_allowed" and "primary key" in error.message
    assert get_aggregate(sales, "metrics=max:id")[0]["max_id"] is not None


def test_an_unknown_group_key_lists_date_buckets_and_no_masked_column(sales):
    error = _error(lambda: get_aggregate(sales, "group_by=regoin"))

    assert error.code == "unknown_column" and "Did you mean 'region'?" in error.message
    assert "day__quarter" in error.message and "moment__week" in error.message
    assert "email" not in error.message and "secret" not in error.message
