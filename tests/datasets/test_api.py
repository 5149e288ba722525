"""The dataset API as clients call it: literal URLs, the contract's shapes, every error status."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from datasets.models import Column, Dataset, Source
from tests.datasets.sales_fixture import register_sales, sales_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows():
    return sales_rows()


@pytest.fixture
def sales(rows):
    return register_sales(rows)


@pytest.fixture
def raw_key(sales):
    from keys.services import api_key_issue

    return api_key_issue(name="tests", all_datasets=True).raw_key


@pytest.fixture
def api(raw_key):
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_list_datasets(api):
    body = api.get("/api/v1/datasets/").json()
    assert body == {
        "count": 1,
        "results": [
            {
                "slug": "sales",
                "title": "Sales",
                "description": "Orders by product and region.",
                "row_count": 240,
                "url": "http://testserver/api/v1/datasets/sales/",
            }
        ],
    }


def test_list_uses_the_public_url_when_set(api, settings):
    settings.GATEWAY_PUBLIC_URL = "https://data.example.com"
    body = api.get("/api/v1/datasets/").json()
    assert body["results"][0]["url"] == "https://data.example.com/api/v1/datasets/sales/"


def test_disabled_dataset_is_not_served(api, sales):
    Dataset.objects.filter(pk=sales.pk).update(enabled=False)
    sales.columns.first().save()  # any catalog change drops the cached specs
    assert api.get("/api/v1/datasets/").json()["count"] == 0
    _error(api.get("/api/v1/datasets/sales/rows/"), 404, "dataset_not_found")


def test_describe_dataset(api):
    body = api.get("/api/v1/datasets/sales/").json()
    assert body["slug"] == "sales"
    assert body["primary_key"] == "order_id"
    assert body["row_count"] == 240
    columns = {column["name"]: column for column in body["columns"]}
    assert list(columns) == [
        "order_id",
        "order_date",
        "product",
        "region",
        "units",
        "revenue",
        "note",
        "customer_email",
    ]
    assert columns["region"]["enum"] == ["APAC", "EU", "US"]
    assert "in" in columns["region"]["operators"] and "gt" not in columns["region"]["operators"]
    assert columns["order_date"]["min"] == "2023-01-04"
    assert {"year", "quarter", "month", "gte"} <= set(columns["order_date"]["operators"])
    # A masked column is published, but cannot be filtered on.
    assert columns["customer_email"]["operators"] == []
    assert set(columns["units"]) >= {
        "name",
        "type",
        "description",
        "operators",
        "enum",
        "min",
        "max",
    }


def test_rows_first_page_and_links(api):
    body = api.get("/api/v1/datasets/sales/rows/").json()
    assert body["count"] == 240
    assert len(body["results"]) == 50
    assert body["previous"] is None
    assert body["truncated"] is False
    assert body["next"] == "http://testserver/api/v1/datasets/sales/rows/?limit=50&offset=50"
    assert [row["order_id"] for row in body["results"]] == list(range(1, 51))
    assert body["results"][0]["order_date"] == "2023-01-04"
    assert body["results"][0]["customer_email"] == "b***@example.com"


def test_next_link_keeps_the_query(api, rows):
    body = api.get("/api/v1/datasets/sales/rows/?region=EU&ordering=-revenue&limit=10").json()
    query = parse_qs(urlsplit(body["next"]).query)
    assert query == {"region": ["EU"], "ordering": ["-revenue"], "limit": ["10"], "offset": ["10"]}
    second = api.get(body["next"]).json()
    assert "offset" not in parse_qs(urlsplit(second["previous"]).query)
    expected = sorted(
        (row for row in rows if row["region"] == "EU"),
        key=lambda row: (-row["revenue"], row["order_id"]),
    )
    got = body["results"] + second["results"]
    assert [row["order_id"] for row in got] == [row["order_id"] for row in expected[:20]]
    assert body["count"] == len(expected)


def test_filters_combine_with_and(api, rows):
    body = api.get(
        "/api/v1/datasets/sales/rows/?region__in=EU,US&units__gte=5&order_date__year=2024&limit=1000&fields=order_id,units"
    ).json()
    expected = [
        row["order_id"]
        for row in rows
        if row["region"] in ("EU", "US") and row["units"] >= 5 and row["order_date"].year == 2024
    ]
    assert [row["order_id"] for row in body["results"]] == expected
    assert body["count"] == len(expected)
    assert set(body["results"][0]) == {"order_id", "units"}


def test_search_is_case_insensitive(api, rows):
    body = api.get("/api/v1/datasets/sales/rows/?search=GIFT 1&limit=1000").json()
    expected = [row["order_id"] for row in rows if "gift 1" in row["note"]]
    assert [row["order_id"] for row in body["results"]] == expected


def test_row_by_primary_key(api, rows):
    body = api.get("/api/v1/datasets/sales/rows/17/").json()
    assert body["order_id"] == 17
    assert body["revenue"] == rows[16]["revenue"]
    assert body["customer_email"] == "b***@example.com"


@pytest.mark.parametrize("pk", ["999999", "abc", "1;DROP TABLE data"])
def test_unknown_row_is_404(api, pk):
    _error(api.get(f"/api/v1/datasets/sales/rows/{pk}/"), 404, "not_found")


def test_seed_question_product_sales_for_q2(api, rows):
    url = "/api/v1/datasets/sales/aggregate/?order_date__gte=2024-04-01&order_date__lte=2024-06-30&group_by=product&metrics=sum:revenue&ordering=-sum_revenue"
    body = api.get(url).json()
    totals = defaultdict(float)
    for row in rows:
        if "2024-04-01" <= row["order_date"].isoformat() <= "2024-06-30":
            totals[row["product"]] += row["revenue"]
    expected = sorted(totals.items(), key=lambda item: -item[1])
    assert [result["product"] for result in body["results"]] == [product for product, _ in expected]
    for result, (_, total) in zip(body["results"], expected, strict=True):
        assert result["sum_revenue"] == pytest.approx(total)
        assert set(result) == {"product", "sum_revenue"}


def test_aggregate_by_quarter_bucket(api, rows):
    body = api.get(
        "/api/v1/datasets/sales/aggregate/?group_by=order_date__quarter&metrics=count,sum:units"
    ).json()
    counts = defaultdict(int)
    for row in rows:
        counts[f"{row['order_date'].year}-Q{(row['order_date'].month - 1) // 3 + 1}"] += 1
    assert {result["order_date__quarter"]: result["count"] for result in body["results"]} == counts
    assert [result["order_date__quarter"] for result in body["results"]] == sorted(counts)


def test_aggregate_default_metric_is_count(api):
    assert api.get("/api/v1/datasets/sales/aggregate/").json() == {
        "count": 1,
        "next": None,
        "truncated": False,
        "results": [{"count": 240}],
    }


@pytest.mark.parametrize(
    ("url", "code", "hint"),
    [
        ("/api/v1/datasets/sales/rows/?revnue__gte=10", "unknown_column", "revenue"),
        ("/api/v1/datasets/sales/rows/?regoin=EU", "unknown_parameter", "region"),
        ("/api/v1/datasets/sales/rows/?units__like=3", "unknown_operator", "gte"),
        ("/api/v1/datasets/sales/rows/?region__gt=EU", "operator_not_allowed", "region__in"),
        ("/api/v1/datasets/sales/rows/?units=many", "invalid_value", "whole number"),
        ("/api/v1/datasets/sales/rows/?order_date__gte=Q2", "invalid_value", "YYYY-MM-DD"),
        ("/api/v1/datasets/sales/rows/?customer_email=a@b.c", "pii_protected", "customer_email"),
        ("/api/v1/datasets/sales/rows/?ordering=-revnue", "unknown_column", "revenue"),
        ("/api/v1/datasets/sales/rows/?fields=order_id,prodcut", "unknown_column", "product"),
        ("/api/v1/datasets/sales/rows/?limit=0", "invalid_limit", "1 to 1000"),
        ("/api/v1/datasets/sales/rows/?limit=1001", "invalid_limit", "1 to 1000"),
        ("/api/v1/datasets/sales/rows/?limit=ten", "invalid_limit", "1 to 1000"),
        ("/api/v1/datasets/sales/rows/?offset=-1", "invalid_offset", "0"),
        ("/api/v1/datasets/sales/rows/?format=xml", "invalid_value", "csv"),
        ("/api/v1/datasets/sales/aggregate/?format=csv", "invalid_value", "json"),
        ("/api/v1/datasets/sales/aggregate/?metrics=total:revenue", "unknown_metric", "sum"),
        ("/api/v1/datasets/sales/aggregate/?metrics=sum:product", "metric_not_allowed", "revenue"),
        (
            "/api/v1/datasets/sales/aggregate/?group_by=order_date__decade",
            "invalid_bucket",
            "quarter",
        ),
        (
            "/api/v1/datasets/sales/aggregate/?group_by=product&ordering=-sum_revenue",
            "unknown_ordering",
            "product",
        ),
        ("/api/v1/datasets/sales/aggregate/?limit=5000", "invalid_limit", "1 to 1000"),
        ("/api/v1/datasets/?offset=3", "unknown_parameter", "none"),
    ],
)
def test_bad_parameters_are_400_with_a_hint(api, url, code, hint):
    error = _error(api.get(url), 400, code)
    assert hint in error["message"]


def test_unknown_dataset_is_404(api):
    error = _error(api.get("/api/v1/datasets/nope/rows/"), 404, "dataset_not_found")
    assert "/api/v1/datasets/" in error["message"]


def test_unknown_endpoint_is_404_in_the_error_shape(api):
    _error(api.get("/api/v1/nothing-here/"), 404, "not_found")


def test_post_is_405(api):
    _error(api.post("/api/v1/datasets/sales/rows/", {}), 405, "method_not_allowed")


def test_missing_key_is_401(sales):
    _error(Client().get("/api/v1/datasets/sales/rows/"), 401, "unauthorized")


def test_unreachable_source_is_503_with_retry_after(api):
    source = Source(name="down", kind="postgresql", url="postgresql://postgres@127.0.0.1:1/test")
    source.save()
    dataset = Dataset.objects.create(slug="remote", title="Remote", source=source, table="orders")
    dataset.columns.create(physical_name="id", name="id", type="integer")
    response = api.get("/api/v1/datasets/remote/rows/")
    _error(response, 503, "source_unavailable")
    assert int(response["Retry-After"]) > 0


class TestSizeGuard:
    @pytest.fixture
    def rows(self):
        return sales_rows(60, note_length=900)

    def test_page_is_cut_to_fit_and_next_continues_exactly(self, api, settings, rows):
        settings.GATEWAY_MAX_RESPONSE_CHARS = 6000
        url = "/api/v1/datasets/sales/rows/?limit=50"
        seen, pages = [], 0
        while url:
            response = api.get(url)
            assert len(response.content.decode()) < 6000
            body = response.json()
            seen += [row["order_id"] for row in body["results"]]
            pages += 1
            if body["next"]:
                assert body["truncated"] is True or len(body["results"]) == 50
            url = body["next"]
        assert seen == [row["order_id"] for row in rows]
        assert pages > 2

    def test_one_row_larger_than_the_limit_asks_for_fewer_fields(self, api, settings):
        settings.GATEWAY_MAX_RESPONSE_CHARS = 1000
        _error(api.get("/api/v1/datasets/sales/rows/?order_id=1"), 400, "response_too_large")
        body = api.get("/api/v1/datasets/sales/rows/?order_id=1&fields=order_id,units").json()
        assert body["results"][0]["order_id"] == 1


class TestAggregatePages:
    URL = "/api/v1/datasets/sales/aggregate/?group_by=order_date__month&metrics=count,sum:units"

    def test_count_says_how_many_groups_and_next_continues_with_offset(self, api, rows):
        months = {row["order_date"].strftime("%Y-%m") for row in rows}
        seen, url = [], self.URL + "&limit=10"
        while url:
            body = api.get(url).json()
            assert body["count"] == len(months) and body["truncated"] is False
            seen += [group["order_date__month"] for group in body["results"]]
            url = body["next"]
            assert url is None or "offset=" in url
        assert seen == sorted(months)

    def test_the_last_page_has_no_next(self, api):
        body = api.get("/api/v1/datasets/sales/aggregate/?group_by=region").json()
        assert body == {
            "count": 3,
            "next": None,
            "truncated": False,
            "results": [
                {"region": "APAC", "count": 80},
                {"region": "EU", "count": 80},
                {"region": "US", "count": 80},
            ],
        }

    def test_groups_are_cut_to_the_size_limit_and_next_continues_exactly(self, api, settings):
        everything = api.get(self.URL + "&limit=1000").json()["results"]
        settings.GATEWAY_MAX_RESPONSE_CHARS = 1200
        seen, url, cut = [], self.URL + "&limit=1000", False
        while url:
            response = api.get(url)
            assert len(response.content.decode()) < 1200
            body = response.json()
            cut = cut or body["truncated"]
            seen += body["results"]
            url = body["next"]
        assert cut and seen == everything

    def test_one_group_larger_than_the_limit_is_a_400(self, api, settings):
        settings.GATEWAY_MAX_RESPONSE_CHARS = 60
        _error(api.get(self.URL), 400, "response_too_large")


def test_a_value_outside_the_published_values_is_400_with_the_closest(api):
    error = _error(api.get("/api/v1/datasets/sales/rows/?region=eu"), 400, "invalid_value")
    assert "Did you mean 'EU'?" in error["message"] and "APAC, EU, US" in error["message"]
    url = "/api/v1/datasets/sales/aggregate/?order_date__year=24&group_by=region"
    error = _error(api.get(url), 400, "invalid_value")
    assert "2023 to 2024" in error["message"]


def test_a_row_filtered_key_is_told_only_its_own_values(sales):
    from keys.services import RowFilter, api_key_issue

    issued = api_key_issue(
        name="EU team",
        datasets=["sales"],
        row_filters=[RowFilter(slug="sales", column="region", value="EU")],
    )
    client = Client(headers={"Authorization": f"Bearer {issued.raw_key}"})
    error = _error(client.get("/api/v1/datasets/sales/rows/?region=us"), 400, "invalid_value")
    assert "Valid values: EU." in error["message"] and "APAC" not in error["message"]


class TestCsv:
    def _read(self, response) -> list[dict]:
        assert response["Content-Type"].startswith("text/csv")
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        return list(csv.DictReader(io.StringIO(text)))

    def test_format_csv(self, api, rows):
        records = self._read(api.get("/api/v1/datasets/sales/rows/?format=csv&region=EU&limit=5"))
        expected = [row for row in rows if row["region"] == "EU"][:5]
        assert [int(record["order_id"]) for record in records] == [
            row["order_id"] for row in expected
        ]
        assert records[0]["customer_email"] == "b***@example.com"

    def test_accept_text_csv(self, api):
        records = self._read(
            api.get(
                "/api/v1/datasets/sales/rows/?fields=order_id,product&limit=3",
                headers={"Accept": "text/csv"},
            )
        )
        assert list(records[0]) == ["order_id", "product"]
        assert len(records) == 3


def test_json_numbers_and_nulls(api, sales):
    body = api.get("/api/v1/datasets/sales/rows/1/").json()
    assert isinstance(body["revenue"], float)
    assert isinstance(body["units"], int)
    assert json.loads(json.dumps(body)) == body


def test_column_metadata_that_no_longer_matches_the_file_is_503_not_500(api, sales):
    # An admin retypes a text column as an integer: the file still holds text.
    sales.columns.filter(name="region").update(type="integer")
    sales.save()
    response = api.get("/api/v1/datasets/sales/rows/?region__gt=3")
    _error(response, 503, "source_error")


class TestCsvFormulas:
    """A cell a spreadsheet would run as a formula is sent as text, with a leading quote."""

    NOTES = {
        1: '=HYPERLINK("http://evil.example","click")',
        2: "+1+cmd|' /C calc'!A0",
        3: "-2+3",
        4: "@SUM(A1:A2)",
        5: "\t=1+1",
        6: "\r=1+1",
        7: "-5",
        8: "plain note",
    }

    @pytest.fixture
    def rows(self):
        rows = sales_rows(8)
        for row in rows:
            row["note"] = self.NOTES[row["order_id"]]
        rows[0]["revenue"] = -12.5
        return rows

    def _records(self, api) -> dict[int, dict]:
        response = api.get("/api/v1/datasets/sales/rows/?format=csv&fields=order_id,revenue,note")
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        return {int(r["order_id"]): r for r in csv.DictReader(io.StringIO(text, newline=""))}

    def test_formula_cells_get_a_leading_quote(self, api):
        records = self._records(api)
        for order_id in (1, 2, 3, 4, 5, 6):
            assert records[order_id]["note"] == "'" + self.NOTES[order_id]

    def test_numbers_and_plain_text_are_unchanged(self, api):
        records = self._records(api)
        assert records[1]["revenue"] == "-12.5"  # a negative number is not a formula
        assert records[7]["note"] == "-5"  # text that is only a number
        assert records[8]["note"] == "plain note"

    def test_json_rows_are_not_changed(self, api):
        body = api.get("/api/v1/datasets/sales/rows/?order_id=1").json()
        assert body["results"][0]["note"] == self.NOTES[1]
        assert body["results"][0]["revenue"] == -12.5


@pytest.fixture
def big_upload(sales):
    """An uploaded dataset of two million rows, heavy enough to pass a tiny time limit."""
    import duckdb

    dataset = Dataset.objects.create(
        slug="big", title="Big", description="Many rows.", table="data", version=1, row_count=0
    )
    dataset.directory.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(dataset.file_path()))
    connection.execute(
        "CREATE TABLE data AS SELECT range AS id, (range * 7919) % 1000003 AS value "
        "FROM range(2000000)"
    )
    connection.close()
    for position, name in enumerate(("id", "value")):
        dataset.columns.create(position=position, physical_name=name, name=name, type="integer")
    dataset.row_count = 2_000_000
    dataset.save()
    return dataset


def test_upload_query_past_the_time_limit_is_503_source_timeout(api, big_upload, monkeypatch):
    from datasets.engine import spec

    monkeypatch.setattr(spec, "UPLOAD_STATEMENT_TIMEOUT", 0.005)
    response = api.get(
        "/api/v1/datasets/big/aggregate/?group_by=value&metrics=count&ordering=-count&limit=3"
    )
    error = _error(response, 503, "source_timeout")
    assert int(response["Retry-After"]) > 0
    assert "narrow it with filters" in error["message"]
    # The worker is free again: the next call (under an ordinary limit) is answered.
    monkeypatch.undo()
    assert api.get("/api/v1/datasets/sales/rows/1/").status_code == 200


def test_a_columns_unit_is_published_wherever_the_column_is_described(api, sales):
    from access.tools import _describe_text

    Column.objects.filter(dataset=sales, name="revenue").update(unit="EUR")
    described = api.get("/api/v1/datasets/sales/").json()
    columns = {column["name"]: column for column in described["columns"]}
    assert columns["revenue"]["unit"] == "EUR" and columns["units"]["unit"] is None
    assert "- revenue (number; unit EUR;" in _describe_text(described)  # describe_dataset's text
    document = api.get("/openapi.json").json()
    rows = next(
        operation["get"]
        for path, operation in document["paths"].items()
        if path.endswith("/sales/rows/")
    )
    revenue = next(p for p in rows["parameters"] if p["name"] == "revenue")
    assert "Unit: EUR." in revenue["description"]
    units = next(p for p in rows["parameters"] if p["name"] == "units")
    assert "Unit:" not in units.get("description", "")


def test_an_unknown_dataset_offers_the_closest_readable_slug(api):
    error = _error(api.get("/api/v1/datasets/salse/rows/"), 404, "dataset_not_found")
    assert error["message"] == (
        "No dataset 'salse'. Did you mean 'sales'? List the datasets at /api/v1/datasets/."
    )
    far = _error(api.get("/api/v1/datasets/weather/"), 404, "dataset_not_found")
    assert "Did you mean" not in far["message"]


def test_a_dataset_outside_the_keys_scope_is_never_suggested(sales, rows):
    from keys.services import api_key_issue

    register_sales(rows, slug="sales_eu")
    scoped = api_key_issue(name="eu", datasets=["sales_eu"]).raw_key
    client = Client(headers={"Authorization": f"Bearer {scoped}"})
    error = _error(client.get("/api/v1/datasets/sales/"), 404, "dataset_not_found")
    assert "Did you mean 'sales_eu'?" in error["message"]  # its own, not the one it asked for
    error = _error(client.get("/api/v1/datasets/sale/"), 404, "dataset_not_found")
    assert "'sales'" not in error["message"].replace("'sale'", "")
    nothing = api_key_issue(name="none", datasets=[]).raw_key
    client = Client(headers={"Authorization": f"Bearer {nothing}"})
    error = _error(client.get("/api/v1/datasets/sales/"), 404, "dataset_not_found")
    assert "Did you mean" not in error["message"]


def test_a_dataset_without_a_description_gets_one_computed_from_the_rows_the_caller_may_read(
    api, sales, rows
):
    from keys.services import RowFilter, api_key_issue

    Dataset.objects.filter(pk=sales.pk).update(description="")
    sales.columns.first().save()  # any catalog change drops the cached specs
    dates = sorted(row["order_date"] for row in rows)
    computed = f"240 rows, keyed by order_id, order_date from {dates[0]} to {dates[-1]}."
    assert api.get("/api/v1/datasets/").json()["results"][0]["description"] == computed
    assert api.get("/api/v1/datasets/sales/").json()["description"] == computed
    eu_rows = sorted(row["order_date"] for row in rows if row["region"] == "EU")
    eu = api_key_issue(
        name="eu",
        datasets=["sales"],
        row_filters=[RowFilter(slug="sales", column="region", value="EU")],
    ).raw_key
    mine = Client(headers={"Authorization": f"Bearer {eu}"}).get("/api/v1/datasets/").json()
    assert mine["results"][0]["description"] == (
        f"{len(eu_rows)} rows, keyed by order_id, order_date from {eu_rows[0]} to {eu_rows[-1]}."
    )
    document = api.get("/openapi.json").json()
    aggregate = next(
        path["get"] for name, path in document["paths"].items() if name.endswith("/aggregate/")
    )
    # A filtered key exists: the public schema withholds the counts and ranges.
    assert aggregate["description"].startswith("Keyed by order_id.")


def test_withheld_values_say_which_call_returns_them(api, sales):
    from keys.services import RowFilter, api_key_issue

    def parameters() -> dict:
        document = api.get("/openapi.json").json()
        rows = next(
            op["get"] for path, op in document["paths"].items() if path.endswith("/sales/rows/")
        )
        return {parameter["name"]: parameter for parameter in rows["parameters"]}

    published = parameters()
    assert "enum" in published["region"]["schema"]
    assert "for this key" not in published["region"].get("description", "")
    api_key_issue(
        name="eu",
        datasets=["sales"],
        row_filters=[RowFilter(slug="sales", column="region", value="EU")],
    )
    withheld = parameters()
    assert "enum" not in withheld["region"]["schema"]
    assert (
        "Its values for this key: GET /api/v1/datasets/sales/." in withheld["region"]["description"]
    )
    assert (
        "Its range for this key: GET /api/v1/datasets/sales/."
        in withheld["order_date"]["description"]
    )
    assert "for this key" not in withheld.get("customer_email", {}).get("description", "")
