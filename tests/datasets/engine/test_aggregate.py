"""Aggregates on every backend: buckets, metrics, ordering, filters, search, PII and forced filters,
each checked against a Python reference and against DuckDB."""

from __future__ import annotations

import pytest

from datasets.engine.errors import QueryError
from datasets.engine.pii import digest
from tests.datasets.engine.sales_table import approx, get_aggregate, groups

BUCKETS = ("year", "quarter", "month", "week", "day")


def insensitive(needle: str):
    return lambda r: any(needle in (r[name] or "").lower() for name in ("label", "notes"))


AGGREGATE_CASES = [
    # every bucket on a date and on a datetime column, keyed by the parameter
    *(
        pytest.param(
            f"group_by={column}__{size}&metrics=count",
            groups([f"{column}__{size}"], ["count"]),
            id=f"{column}__{size}",
        )
        for column in ("day", "moment")
        for size in BUCKETS
    ),
    # every metric on every type it applies to, without and with groups
    pytest.param(
        "metrics=count,sum:qty,sum:price,avg:qty,avg:price",
        groups([], ["count", "sum_qty", "sum_price", "avg_qty", "avg_price"]),
        id="sum and avg",
    ),
    pytest.param(
        "metrics=min:qty,max:qty,min:price,max:price,min:day,max:day,min:moment,max:moment,min:region,max:region",
        groups(
            [],
            [
                "min_qty",
                "max_qty",
                "min_price",
                "max_price",
                "min_day",
                "max_day",
                "min_moment",
                "max_moment",
                "min_region",
                "max_region",
            ],
        ),
        id="min and max",
    ),
    pytest.param(
        "metrics=count_distinct:region,count_distinct:qty,count_distinct:price,count_distinct:active,count_distinct:day,count_distinct:moment,count_distinct:label",
        groups(
            [],
            [
                "count_distinct_region",
                "count_distinct_qty",
                "count_distinct_price",
                "count_distinct_active",
                "count_distinct_day",
                "count_distinct_moment",
                "count_distinct_label",
            ],
        ),
        id="count_distinct",
    ),
    pytest.param(
        "group_by=region&metrics=count,sum:qty,avg:price,min:day,max:moment,count_distinct:qty",
        groups(
            ["region"],
            ["count", "sum_qty", "avg_price", "min_day", "max_moment", "count_distinct_qty"],
        ),
        id="metrics by region",
    ),
    pytest.param("metrics=count", groups([], ["count"]), id="count alone"),
    pytest.param("", groups([], ["count"]), id="count by default"),
    # groups
    pytest.param("group_by=active", groups(["active"], ["count"]), id="boolean group, NULL last"),
    pytest.param("group_by=qty&metrics=count", groups(["qty"], ["count"]), id="integer group"),
    pytest.param("group_by=day", groups(["day"], ["count"]), id="date group"),
    pytest.param(
        "group_by=region,day__year&metrics=sum:price",
        groups(["region", "day__year"], ["sum_price"]),
        id="two keys",
    ),
    pytest.param(
        "group_by=day__year,day__quarter,day__month",
        groups(["day__year", "day__quarter", "day__month"], ["count"]),
        id="three buckets of one column",
    ),
    # ordering by results and keys, NULLs last both ways
    pytest.param(
        "group_by=region&ordering=-count,region",
        groups(["region"], ["count"], ordering=[("count", True), ("region", False)]),
        id="-count,region",
    ),
    pytest.param(
        "group_by=region&ordering=-region",
        groups(["region"], ["count"], ordering=[("region", True)]),
        id="-region NULL last",
    ),
    pytest.param(
        "group_by=active&ordering=-active",
        groups(["active"], ["count"], ordering=[("active", True)]),
        id="-active",
    ),
    pytest.param(
        "group_by=day__year&metrics=sum:price&ordering=-sum_price,day__year",
        groups(["day__year"], ["sum_price"], ordering=[("sum_price", True), ("day__year", False)]),
        id="-sum_price",
    ),
    pytest.param(
        "group_by=day__month&metrics=avg:qty&ordering=avg_qty,day__month",
        groups(["day__month"], ["avg_qty"], ordering=[("avg_qty", False), ("day__month", False)]),
        id="avg_qty with NULL groups",
    ),
    pytest.param(
        "group_by=day__week&ordering=-day__week&limit=3",
        groups(["day__week"], ["count"], ordering=[("day__week", True)], limit=3),
        id="limit",
    ),
    pytest.param(
        "group_by=day__day&limit=1000",
        groups(["day__day"], ["count"], limit=1000),
        id="limit max",
    ),
    # filters and search restrict the groups
    pytest.param(
        "day__gte=2024-04-01&day__lte=2024-06-30&group_by=day__quarter&metrics=count,sum:price",
        groups(
            ["day__quarter"],
            ["count", "sum_price"],
            where=lambda r: (
                r["day"] is not None and "2024-04-01" <= r["day"].isoformat() <= "2024-06-30"
            ),
        ),
        id="seed: Q2 by quarter",
    ),
    pytest.param(
        "moment__lte=2024-06-30&moment__gte=2024-06-30&group_by=moment__day",
        groups(
            ["moment__day"],
            ["count"],
            where=lambda r: (
                r["moment"] is not None and r["moment"].date().isoformat() == "2024-06-30"
            ),
        ),
        id="datetime whole day",
    ),
    pytest.param(
        "region__ne=EU&group_by=region&metrics=sum:qty",
        groups(["region"], ["sum_qty"], where=lambda r: r["region"] != "EU"),
        id="filtered",
    ),
    pytest.param(
        "search=off&group_by=region",
        groups(["region"], ["count"], where=insensitive("off")),
        id="search",
    ),
    pytest.param("region=Nowhere&group_by=region", [], id="no group matches"),
    pytest.param(
        "region=Nowhere&metrics=count,sum:qty,avg:price,min:day,count_distinct:label",
        [
            {
                "count": 0,
                "sum_qty": None,
                "avg_price": None,
                "min_day": None,
                "count_distinct_label": 0,
            }
        ],
        id="no row matches, no groups",
    ),
    # personal data: count_distinct allowed, group keys masked or hashed
    pytest.param(
        "metrics=count_distinct:email,count_distinct:customer",
        groups([], ["count_distinct_email", "count_distinct_customer"]),
        id="count_distinct on pii",
    ),
]


@pytest.mark.parametrize(("query", "expected"), AGGREGATE_CASES)
def test_aggregate_matches_python_reference_and_duckdb(sales, duck, query, expected):
    result = get_aggregate(sales, query)

    assert result == approx(expected)
    assert result == approx(get_aggregate(duck, query))


def test_bucket_strings_are_exact(sales):
    result = get_aggregate(sales, "id=9&group_by=" + ",".join(f"day__{size}" for size in BUCKETS))

    assert result == [
        {
            "day__year": "2024",
            "day__quarter": "2024-Q2",
            "day__month": "2024-04",
            "day__week": "2024-W14",
            "day__day": "2024-04-03",
            "count": 1,
        }
    ]


@pytest.mark.parametrize(
    ("day", "week", "quarter"),
    [
        ("2024-12-30", "2025-W01", "2024-Q4"),
        ("2023-01-01", "2022-W52", "2023-Q1"),
        ("2021-01-03", "2020-W53", "2021-Q1"),
        ("2021-01-04", "2021-W01", "2021-Q1"),
        ("2024-12-29", "2024-W52", "2024-Q4"),
        ("2024-03-31", "2024-W13", "2024-Q1"),
        ("2024-04-01", "2024-W14", "2024-Q2"),
        ("2024-06-30", "2024-W26", "2024-Q2"),
        ("2024-07-01", "2024-W27", "2024-Q3"),
    ],
)
def test_iso_week_and_quarter_edges(sales, day, week, quarter):
    result = get_aggregate(sales, f"day={day}&group_by=day__week,day__quarter")

    assert result == [{"day__week": week, "day__quarter": quarter, "count": 1}]


def test_datetime_buckets_at_the_edges_of_a_day(sales):
    result = get_aggregate(
        sales, "moment__gte=2024-06-30&moment__lte=2024-07-01&group_by=moment__day,moment__quarter"
    )

    assert result == [
        {"moment__day": "2024-06-30", "moment__quarter": "2024-Q2", "count": 2},
        {"moment__day": "2024-07-01", "moment__quarter": "2024-Q3", "count": 1},
    ]


def _sorted(results: list[dict]) -> list[dict]:
    return sorted(results, key=lambda item: [str(value) for value in item.values()])


def test_hashed_group_keys_are_digests_in_digest_order(sales, duck):
    result = get_aggregate(sales, "group_by=customer&metrics=count")

    assert _sorted(result) == _sorted(groups(["customer"], ["count"]))
    assert [item["customer"] for item in result] == sorted(item["customer"] for item in result)
    assert result == get_aggregate(duck, "group_by=customer&metrics=count")
    assert {item["customer"] for item in get_aggregate(sales, "id=1&group_by=customer")} == {
        digest("Customer 1")
    }


def test_masked_column_cannot_be_grouped_by(sales):
    with pytest.raises(QueryError) as raised:
        get_aggregate(sales, "group_by=email")

    assert raised.value.code == "pii_protected"
    assert "count_distinct:email" in raised.value.message


def test_hashed_group_keys_under_a_limit_are_the_same_groups_every_time(sales):
    first = get_aggregate(sales, "group_by=customer&limit=5")
    assert first == get_aggregate(sales, "group_by=customer&limit=5")
    assert len(first) == 5


def test_hidden_column_never_appears_in_aggregates(sales):
    result = get_aggregate(sales, "group_by=region&metrics=count,count_distinct:label")

    assert all("secret" not in item for item in result)


FORCED_CASES = [
    ("group_by=region", groups(["region"], ["count"], where=lambda r: r["region"] == "EU")),
    (
        "metrics=count,sum:qty",
        groups([], ["count", "sum_qty"], where=lambda r: r["region"] == "EU"),
    ),
    ("region=US&group_by=region", []),
    ("region=US&metrics=count", [{"count": 0}]),
    (
        "search=off&group_by=day__year",
        groups(
            ["day__year"], ["count"], where=lambda r: r["region"] == "EU" and insensitive("off")(r)
        ),
    ),
]


@pytest.mark.parametrize(("query", "expected"), FORCED_CASES, ids=[c[0] for c in FORCED_CASES])
def test_forced_row_filter_holds_in_aggregates(sales, query, expected):
    assert get_aggregate(sales, query, forced={"region": "EU"}) == approx(expected)


# Hashed group keys: ordered on their digests before the limit, so a limit never tells which raw
# values come first. The key is pinned so that raw order and digest order differ.
PINNED_SECRET = "pinned-secret-for-digest-tests"
HASHED_LIMIT_CASES = [
    # query, then the reference: group keys, metrics, ordering (None: by group keys), limit
    ("group_by=customer&limit=2", (["customer"], ["count"], None, 2)),
    (
        # every customer has 14 rows: the tie is broken by digest, not by raw value
        "group_by=customer&metrics=count&ordering=-count&limit=2",
        (["customer"], ["count"], [("count", True), ("customer", False)], 2),
    ),
    (
        "group_by=customer&metrics=sum:qty&ordering=-sum_qty&limit=3",
        (["customer"], ["sum_qty"], [("sum_qty", True), ("customer", False)], 3),
    ),
    ("group_by=region,customer&limit=4", (["region", "customer"], ["count"], None, 4)),
]


@pytest.mark.parametrize(
    ("query", "reference"), HASHED_LIMIT_CASES, ids=[c[0] for c in HASHED_LIMIT_CASES]
)
def test_hashed_groups_are_ordered_by_digest_before_the_limit(sales, settings, query, reference):
    settings.SECRET_KEY = PINNED_SECRET
    group_by, metrics, ordering, limit = reference

    expected = groups(group_by, metrics, ordering=ordering, limit=limit)
    assert get_aggregate(sales, query) == approx(expected)


def test_a_limit_on_hashed_groups_keeps_the_smallest_digests_not_the_smallest_values(
    sales, settings
):
    settings.SECRET_KEY = PINNED_SECRET
    kept = [item["customer"] for item in get_aggregate(sales, "group_by=customer&limit=2")]
    every = sorted(digest(f"Customer {i}") for i in range(6))

    assert kept == every[:2]
    # Under this key the two first raw values are not the two first digests.
    assert set(kept) != {digest("Customer 0"), digest("Customer 1")}


def test_too_many_hashed_groups_is_a_400_asking_for_filters(sales, monkeypatch):
    from datasets.engine import compile as compile_module
    from datasets.engine import execute

    monkeypatch.setattr(compile_module, "MAX_HASHED_GROUPS", 3)
    monkeypatch.setattr(execute, "MAX_HASHED_GROUPS", 3)
    with pytest.raises(QueryError) as raised:
        get_aggregate(sales, "group_by=customer&limit=1")

    assert raised.value.code == "too_many_groups"
    assert "filters" in raised.value.message


def _groups(spec, query: str):
    from datasets.engine.execute import run_groups
    from datasets.engine.parse import parse_aggregate
    from tests.datasets.engine.sales_table import _params

    return run_groups(spec, parse_aggregate(spec, _params(query)))


def test_groups_are_counted_in_all_and_offset_continues(sales):
    everything = get_aggregate(sales, "group_by=day__month&metrics=count&limit=1000")
    first = _groups(sales, "group_by=day__month&metrics=count&limit=2")
    rest = _groups(sales, "group_by=day__month&metrics=count&limit=1000&offset=2")

    assert first.count == len(everything) > 2
    assert first.results + rest.results == everything
    assert rest.count == len(everything)


def test_an_offset_past_the_last_group_counts_them_all(sales):
    everything = get_aggregate(sales, "group_by=region&metrics=count")
    past = _groups(sales, "group_by=region&metrics=count&offset=50")

    assert past.results == [] and past.count == len(everything)


def test_an_aggregate_without_groups_is_one_group(sales):
    assert _groups(sales, "metrics=count").count == 1
