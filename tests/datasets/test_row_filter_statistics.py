"""Statistics obey row filters: a key for tenant A never receives a count, value or range computed
over tenant B's rows (dataset list, describe, a schema served to it), and the public schema of a
dataset that some key reads through row filters publishes no values at all."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from datasets.engine.statistics import statistics_forget
from datasets.services import dataset_import
from keys.services import RowFilter, api_key_issue

pytestmark = pytest.mark.django_db

# Ten salaries per tenant, each paid twice: twenty distinct integers, so salary becomes an enum.
A_SALARIES = [41_000 + 1_000 * i for i in range(10)]
B_SALARIES = [91_000 + 1_000 * i for i in range(10)]
B_HIRED = ("2023-05-01", "2023-05-20")


@pytest.fixture(autouse=True)
def _fresh_statistics():
    statistics_forget()
    yield
    statistics_forget()


@pytest.fixture
def payroll(tmp_path):
    lines = ["employee_id,tenant,salary,hired"]
    for tenant, salaries, year in (("A", A_SALARIES, 2020), ("B", B_SALARIES, 2023)):
        for index in range(20):
            number = len(lines)
            lines.append(f"{number},{tenant},{salaries[index % 10]},{year}-05-{index + 1:02d}")
    path = tmp_path / "payroll.csv"
    path.write_text("\n".join(lines) + "\n")
    dataset_import(path=path, slug="payroll", primary_key="employee_id")
    return "payroll"


def _client(raw_key: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


@pytest.fixture
def tenant_a(payroll) -> Client:
    issued = api_key_issue(
        name="tenant A",
        datasets=["payroll"],
        row_filters=[RowFilter(slug="payroll", column="tenant", value="A")],
    )
    return _client(issued.raw_key)


@pytest.fixture
def everyone(payroll) -> Client:
    return _client(api_key_issue(name="all", all_datasets=True).raw_key)


def _assert_nothing_of_b(text: str) -> None:
    for salary in B_SALARIES:
        assert str(salary) not in text
    for day in B_HIRED:
        assert day not in text
    assert '"B"' not in text
    assert "2023" not in text  # B's hiring year, in ranges and in example calls


def _columns(body: dict) -> dict[str, dict]:
    return {column["name"]: column for column in body["columns"]}


def test_the_import_made_salary_and_tenant_enums(everyone):
    # The premise: without row filters the whole dataset's statistics are published.
    body = everyone.get("/api/v1/datasets/payroll/").json()
    columns = _columns(body)
    assert body["row_count"] == 40
    assert columns["salary"]["enum"] == sorted(A_SALARIES + B_SALARIES)
    assert columns["tenant"]["enum"] == ["A", "B"]
    assert columns["hired"]["max"] == "2023-05-20"


def test_describe_gives_a_row_filtered_key_its_own_statistics(tenant_a):
    response = tenant_a.get("/api/v1/datasets/payroll/")
    body = response.json()
    columns = _columns(body)

    assert body["row_count"] == 20
    assert columns["salary"]["enum"] == A_SALARIES
    assert (columns["salary"]["min"], columns["salary"]["max"]) == (41_000, 50_000)
    assert columns["tenant"]["enum"] == ["A"]
    assert (columns["hired"]["min"], columns["hired"]["max"]) == ("2020-05-01", "2020-05-20")
    _assert_nothing_of_b(response.content.decode())


def test_the_dataset_list_gives_a_row_filtered_key_its_own_row_count(tenant_a, everyone):
    response = tenant_a.get("/api/v1/datasets/")
    assert [entry["row_count"] for entry in response.json()["results"]] == [20]
    assert "40" not in response.content.decode()
    assert everyone.get("/api/v1/datasets/").json()["results"][0]["row_count"] == 40


@pytest.mark.parametrize(
    "url", ["/openapi.json", "/openapi.yaml", "/openapi.json?datasets=payroll"]
)
def test_a_schema_served_to_a_row_filtered_key_describes_its_rows_only(tenant_a, settings, url):
    settings.GATEWAY_SCHEMA_PUBLIC = False
    response = tenant_a.get(url)
    assert response.status_code == 200, response.content[:300]
    text = response.content.decode()

    _assert_nothing_of_b(text)
    assert str(A_SALARIES[0]) in text  # its own values are published


def test_schemas_of_two_tenants_do_not_share_statistics(tenant_a, payroll, settings):
    settings.GATEWAY_SCHEMA_PUBLIC = False
    issued = api_key_issue(
        name="tenant B",
        datasets=["payroll"],
        row_filters=[RowFilter(slug="payroll", column="tenant", value="B")],
    )
    tenant_b = _client(issued.raw_key)
    a_text = tenant_a.get("/openapi.json").content.decode()
    b_text = tenant_b.get("/openapi.json").content.decode()

    _assert_nothing_of_b(a_text)
    assert all(str(salary) not in b_text for salary in A_SALARIES)
    assert str(B_SALARIES[0]) in b_text


def _schema_values(document: dict) -> dict:
    # Values and ranges are published once, on each column's equality filter.
    operation = document["paths"]["/api/v1/datasets/payroll/rows/"]["get"]
    columns = document["components"]["schemas"]["payroll_row"]["properties"]
    filters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    return {
        name: (filters[name]["schema"].get("enum"), filters[name].get("description", ""))
        for name in columns
        if name in filters
    }


def test_the_public_schema_of_a_row_filtered_dataset_publishes_no_values(tenant_a):
    response = Client().get("/openapi.json")
    text = response.content.decode()
    values = _schema_values(json.loads(text))

    for salary in A_SALARIES + B_SALARIES:
        assert str(salary) not in text
    assert '"B"' not in text and "2023" not in text and "2020" not in text
    assert all(enum is None for enum, _ in values.values())
    assert all("Values from" not in description for _, description in values.values())


def test_the_public_schema_of_an_unfiltered_dataset_keeps_its_values(everyone):
    values = _schema_values(Client().get("/openapi.json").json())
    assert values["tenant"][0] == ["A", "B"]


def test_a_row_filter_given_later_withdraws_the_public_values(everyone):
    assert str(B_SALARIES[0]) in Client().get("/openapi.json").content.decode()
    api_key_issue(
        name="tenant B",
        datasets=["payroll"],
        row_filters=[RowFilter(slug="payroll", column="tenant", value="B")],
    )
    assert str(B_SALARIES[0]) not in Client().get("/openapi.json").content.decode()


def test_a_key_without_row_filters_keeps_the_full_statistics_in_its_schema(
    tenant_a, everyone, settings
):
    settings.GATEWAY_SCHEMA_PUBLIC = False
    text = everyone.get("/openapi.json").content.decode()
    assert str(B_SALARIES[0]) in text and str(A_SALARIES[0]) in text


def test_row_filtered_rows_and_aggregates_still_answer(tenant_a):
    body = tenant_a.get("/api/v1/datasets/payroll/aggregate/?group_by=tenant&metrics=max:salary")
    assert body.json()["results"] == [{"tenant": "A", "max_salary": 50_000}]
    assert tenant_a.get("/api/v1/datasets/payroll/rows/").json()["count"] == 20
