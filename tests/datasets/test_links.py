"""Identifiers and links between datasets: declared in the admin, said in the schema, describe and
MCP, and never pointing at a dataset outside the reader's scope or document."""

from __future__ import annotations

import pytest
from django.test import Client

from access.tools import tool_call
from datasets.models import Column, Dataset
from datasets.policy import AccessPolicy
from keys.services import api_key_issue
from tests.datasets.sales_fixture import register_sales, sales_rows

pytestmark = pytest.mark.django_db

EVERYTHING = AccessPolicy(
    principal="k:8", all_datasets=True, dataset_ids=frozenset(), row_filters={}
)


@pytest.fixture
def linked():
    """sales.order_id refers to archive (another dataset keyed by order_id); customer_email
    identifies one customer."""
    rows = sales_rows()
    sales = register_sales(rows)
    archive = register_sales(rows, slug="archive")
    Column.objects.filter(dataset=sales, name="order_id").update(references=archive)
    Column.objects.filter(dataset=sales, name="customer_email").update(identifies="one customer")
    return sales, archive


def reader(*slugs: str) -> Client:
    raw = api_key_issue(name="k", datasets=list(slugs), all_datasets=not slugs).raw_key
    return Client(headers={"Authorization": f"Bearer {raw}"})


def columns(client: Client) -> dict:
    body = client.get("/api/v1/datasets/sales/").json()
    return {column["name"]: column for column in body["columns"]}


def test_describe_says_what_a_column_identifies_and_refers_to(linked):
    described = columns(reader())
    assert described["order_id"]["references"] == "archive.order_id"
    assert described["customer_email"]["identifies"] == "one customer"
    assert described["region"]["references"] is None and described["region"]["identifies"] is None


def test_the_schema_says_so_in_a_few_words(linked):
    document = Client().get("/openapi.json").json()
    rows = next(
        op["get"] for path, op in document["paths"].items() if path.endswith("/sales/rows/")
    )
    order_id = next(p for p in rows["parameters"] if p["name"] == "order_id")
    assert "Refers to archive.order_id." in order_id["description"]
    row = document["components"]["schemas"]
    email = next(
        schema["properties"]["customer_email"]
        for name, schema in row.items()
        if name.startswith("sales")
        and "properties" in schema
        and "customer_email" in schema["properties"]
    )
    assert "Identifies one customer." in email["description"]


def test_a_reference_outside_the_readers_scope_is_not_mentioned(linked):
    described = columns(reader("sales"))
    assert described["order_id"]["references"] is None
    assert "archive" not in str(described)
    sales, _ = linked
    only_sales = AccessPolicy(
        principal="k:9", all_datasets=False, dataset_ids=frozenset({sales.pk}), row_filters={}
    )
    listed = tool_call(
        "list_datasets", {}, policy=only_sales, base_url="http://testserver", max_chars=50_000
    )
    assert "archive" not in listed.text and "refers to" not in listed.text
    listed = tool_call(
        "list_datasets", {}, policy=EVERYTHING, base_url="http://testserver", max_chars=50_000
    )
    assert "order_id (integer; refers to archive.order_id" in listed.text


def test_a_document_without_the_referenced_dataset_does_not_mention_it(linked):
    subset = Client().get("/openapi.json?datasets=sales").json()
    assert "archive" not in str(subset)
    both = Client().get("/openapi.json?datasets=sales,archive").json()
    assert "Refers to archive.order_id." in str(both)


@pytest.mark.parametrize("change", [{"enabled": False}, {"primary_key": ""}])
def test_a_reference_to_a_dataset_without_rows_by_key_is_dropped(linked, change):
    _, archive = linked
    Dataset.objects.filter(pk=archive.pk).update(**change)
    Column.objects.filter(dataset=archive).first().save()  # any catalog change reloads the specs
    assert columns(reader())["order_id"]["references"] is None


def test_the_admin_sets_a_reference_among_datasets_with_a_primary_key(linked, admin_client):
    sales, archive = linked
    keyless = register_sales(sales_rows(), slug="keyless")
    Dataset.objects.filter(pk=keyless.pk).update(primary_key="")
    page = admin_client.get(f"/admin/datasets/dataset/{sales.pk}/change/").content.decode()
    assert f'<option value="{archive.pk}"' in page
    assert f'<option value="{keyless.pk}"' not in page


# expand: the referenced row's label in the same call


def rows_of(client: Client, query: str) -> list[dict]:
    response = client.get(f"/api/v1/datasets/sales/rows/?{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_expand_gives_each_row_the_label_of_the_row_it_refers_to(linked):
    rows = rows_of(reader(), "expand=order_id&limit=20")
    # archive's label: its first text column other than the key (product).
    assert [row["order_id__label"] for row in rows] == [row["product"] for row in rows]
    csv = reader().get("/api/v1/datasets/sales/rows/?expand=order_id&limit=3&format=csv")
    header = b"".join(csv.streaming_content).decode().lstrip("\ufeff").splitlines()[0]
    assert header.endswith(",order_id__label")


def test_a_column_named_like_a_name_is_the_label_before_the_first_text_column(linked):
    # As planes (tailnum, type, ..., name): "Fixed wing multi engine" names no plane.
    _, archive = linked
    Column.objects.filter(dataset=archive, name="note").update(name="product_name")
    rows = rows_of(reader(), "expand=order_id&limit=20")
    assert [row["order_id__label"] for row in rows] == [row["note"] for row in rows]


def test_the_admins_label_column_names_the_rows(linked):
    _, archive = linked
    Dataset.objects.filter(pk=archive.pk).update(label_column="region")
    Column.objects.filter(dataset=archive).first().save()  # any catalog change reloads the specs
    rows = rows_of(reader(), "expand=order_id&limit=20")
    assert [row["order_id__label"] for row in rows] == [row["region"] for row in rows]


@pytest.mark.parametrize("pii", ["mask", "hide"])
def test_a_label_column_masked_or_hidden_later_is_never_shown_as_a_label(linked, pii):
    _, archive = linked
    Dataset.objects.filter(pk=archive.pk).update(label_column="note")
    Column.objects.filter(dataset=archive, name="note").update(pii=pii)
    rows = rows_of(reader(), "expand=order_id&limit=20")
    assert [row["order_id__label"] for row in rows] == [row["product"] for row in rows]


@pytest.mark.parametrize(
    ("label", "error"),
    [
        (
            "nope",
            "archive has no column 'nope' other than its key. Its columns: order_date, product",
        ),
        ("order_id", "archive has no column 'order_id' other than its key."),
        ("customer_email", "customer_email is hidden, masked or hashed"),
    ],
)
def test_the_admin_refuses_a_label_column_that_cannot_name_rows(linked, label, error):
    from datasets.admin import DatasetChangeForm

    _, archive = linked
    form = DatasetChangeForm(data={"time_zone": "", "label_column": label}, instance=archive)
    assert not form.is_valid()
    assert error in form.errors["label_column"][0]
    accepted = DatasetChangeForm(data={"time_zone": "", "label_column": "region"}, instance=archive)
    assert accepted.is_valid(), accepted.errors


def labelled(client: Client, door: str) -> list[dict]:
    """Rows or groups that carry order_id, region, product and order_id's label, read through
    one of the three doors that take expand."""
    if door == "rows":
        return rows_of(client, "expand=order_id&limit=30")
    if door == "aggregate":
        query = "group_by=order_id,region,product&expand=order_id&limit=30"
        response = client.get(f"/api/v1/datasets/sales/aggregate/?{query}")
        assert response.status_code == 200, response.content
        return response.json()["results"]
    keys = [row["order_id"] for row in rows_of(client, "limit=30")]
    got = [client.get(f"/api/v1/datasets/sales/rows/{key}/?expand=order_id") for key in keys]
    assert all(response.status_code == 200 for response in got), got[0].content
    return [response.json() for response in got]


DOORS = ("rows", "row", "aggregate")


@pytest.mark.parametrize("door", DOORS)
def test_a_row_by_key_and_aggregate_groups_carry_labels_as_rows_do(linked, door):
    found = labelled(reader(), door)
    assert len(found) == 30
    assert [row["order_id__label"] for row in found] == [row["product"] for row in found]


@pytest.mark.parametrize("door", DOORS)
def test_expand_reads_the_other_dataset_under_the_readers_row_filters(linked, door):
    from keys.services import RowFilter

    raw = api_key_issue(
        name="eu archive",
        datasets=["sales", "archive"],
        row_filters=[RowFilter(slug="archive", column="region", value="EU")],
    ).raw_key
    found = labelled(Client(headers={"Authorization": f"Bearer {raw}"}), door)
    for row in found:
        assert row["order_id__label"] == (row["product"] if row["region"] == "EU" else None)
    assert any(row["order_id__label"] is None for row in found)


def test_expand_follows_the_other_datasets_personal_data_rules(linked):
    _, archive = linked
    Column.objects.filter(dataset=archive, name="product").update(pii="hide")
    rows = rows_of(reader(), "expand=order_id&limit=10")
    assert [row["order_id__label"] for row in rows] == [row["region"] for row in rows]


@pytest.mark.parametrize(
    ("query", "hint"),
    [
        ("rows/?expand=region", "refer to another dataset"),
        ("rows/?expand=order_id&fields=region", "needs order_id among the fields"),
        ("aggregate/?expand=region&group_by=region", "refer to another dataset"),
        ("aggregate/?expand=order_id&group_by=region", "needs order_id in group_by"),
        ("rows/1/?expand=region", "refer to another dataset"),
    ],
)
def test_a_bad_expand_is_400(linked, query, hint):
    response = reader().get(f"/api/v1/datasets/sales/{query}")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_expand"
    assert hint in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["rows/", "rows/1/", "aggregate/?group_by=order_id&"])
def test_expand_of_a_reference_outside_the_scope_is_refused_without_naming_it(linked, path):
    separator = "" if path.endswith("&") else "?"
    response = reader("sales").get(f"/api/v1/datasets/sales/{path}{separator}expand=order_id")
    assert response.status_code == 400
    assert "archive" not in response.content.decode()


def test_the_schema_and_mcp_declare_expand(linked):
    document = Client().get("/openapi.json").json()
    rows = next(
        op["get"] for path, op in document["paths"].items() if path.endswith("/sales/rows/")
    )
    expand = next(p for p in rows["parameters"] if p["name"] == "expand")
    assert "order_id" in expand["description"]
    assert "order_id__label" in str(document["components"]["schemas"])
    for path in ("/sales/rows/{pk}/", "/sales/aggregate/"):
        operation = next(op["get"] for url, op in document["paths"].items() if url.endswith(path))
        expand = next(p for p in operation["parameters"] if p["name"] == "expand")
        assert "list_sales_rows" in expand["description"]
    answer = tool_call(
        "query_rows",
        {"dataset": "sales", "expand": ["order_id"], "limit": 5},
        policy=EVERYTHING,
        base_url="http://testserver",
        max_chars=50_000,
    )
    assert all(row["order_id__label"] == row["product"] for row in answer.structured["results"])
    row = tool_call(
        "get_row",
        {"dataset": "sales", "key": 1, "expand": ["order_id"]},
        policy=EVERYTHING,
        base_url="http://testserver",
        max_chars=50_000,
    ).structured
    assert row["order_id__label"] == row["product"]
    groups = tool_call(
        "aggregate",
        {"dataset": "sales", "group_by": ["order_id", "product"], "expand": "order_id"},
        policy=EVERYTHING,
        base_url="http://testserver",
        max_chars=50_000,
    ).structured["results"]
    assert groups and all(group["order_id__label"] == group["product"] for group in groups)


def test_an_unknown_parameter_offers_expand_only_where_the_reader_may_follow_a_link(linked):
    def valid(client: Client) -> list[str]:
        message = client.get("/api/v1/datasets/sales/rows/?regoin=EU").json()["error"]["message"]
        return message.rpartition(": ")[2].rstrip(".").split(", ")

    assert "expand" in valid(reader())
    assert "expand" not in valid(reader("sales"))  # the link leads outside its scope


# The row-by-key example of a text key is a real key of the reader's rows


def test_a_text_keys_example_is_a_key_the_readers_rows_hold(tmp_path):
    from datasets.selectors import dataset_spec
    from datasets.services import dataset_import

    path = tmp_path / "airlines.csv"
    path.write_text("carrier,name,region\nUA,United,US\n9E,Endeavor,US\nAF,Air France,EU\n")
    dataset = dataset_import(path=path, slug="airlines", primary_key="carrier")
    key = dataset.columns.get(name="carrier")
    assert (key.min_value, key.max_value) == ("9E", "UA")
    document = Client().get("/openapi.json").json()
    operation = document["paths"]["/api/v1/datasets/airlines/rows/{pk}/"]["get"]
    assert "Example: GET /api/v1/datasets/airlines/rows/9E/" in operation["description"]
    assert "Values from" not in str(document["paths"])  # a text key's range is not described
    client = reader()
    assert client.get("/api/v1/datasets/airlines/rows/9E/").status_code == 200
    eu = AccessPolicy(
        principal="k:7",
        all_datasets=True,
        dataset_ids=frozenset(),
        row_filters={dataset.pk: {"region": "EU"}},
    )
    published = eu.published(dataset_spec("airlines"))
    assert published.column("carrier").min == "AF"  # among the reader's rows, not 9E


def test_a_registered_tables_text_key_keeps_its_range(tmp_path):
    import sqlite3

    from datasets.sources import dataset_register, source_create

    path = tmp_path / "codes.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE codes (code TEXT PRIMARY KEY, label TEXT);"
            "INSERT INTO codes VALUES ('LGA', 'LaGuardia'), ('EWR', 'Newark'), ('JFK', 'Kennedy');"
        )
    source = source_create(name="codes", url=f"sqlite:///{path}")
    dataset = dataset_register(source=source, table="codes", slug="codes")
    key = dataset.columns.get(name="code")
    assert (key.min_value, key.max_value) == ("EWR", "LGA")
    assert dataset.columns.get(name="label").min_value is None  # other text columns: no range


def test_a_row_by_key_offers_expand_only_where_the_reader_may_follow_a_link(linked):
    def message(client: Client) -> str:
        response = client.get("/api/v1/datasets/sales/rows/1/?expnd=order_id")
        assert response.status_code == 400
        return response.json()["error"]["message"]

    assert "Did you mean 'expand'? Valid parameters here: expand." in message(reader())
    assert message(reader("sales")).endswith("Valid parameters here: none.")
