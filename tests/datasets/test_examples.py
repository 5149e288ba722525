"""Every example a GPT is shown (in the schema's operations, on the Connect page and in the GPT
instructions) is a call that returns rows, with a statistic that fits its column."""

from __future__ import annotations

import html
import json
import random
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client

from datasets.demo import demo_load
from datasets.engine.connections import duckdb_files
from datasets.models import Column
from datasets.schema.guide import example_calls
from datasets.selectors import dataset_spec
from datasets.services import dataset_import
from keys.services import api_key_issue

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://gateway.example.com"
EXAMPLE = re.compile(r"Example: GET (\S+)")
RUN_BUTTON = re.compile(r'data-url="([^"]+)"')
INSTRUCTION = re.compile(r"-> GET ([^\s<]+)")


def _tips(rng: random.Random) -> str:
    lines = ["total_bill,tip,sex,smoker,day,time,size"]
    for _ in range(244):
        bill = round(rng.uniform(3, 50), 2)
        lines.append(
            f"{bill},{round(bill * rng.uniform(0.05, 0.25), 2)},{rng.choice(['Female', 'Male'])},"
            f"{rng.choice(['Yes', 'No'])},{rng.choice(['Thur', 'Fri', 'Sat', 'Sun'])},"
            f"{rng.choice(['Lunch', 'Dinner'])},{rng.randint(1, 6)}"
        )
    return "\n".join(lines) + "\n"


def _weather(rng: random.Random) -> str:
    import datetime as dt

    lines = ["date,precipitation,temp_max,temp_min,wind,weather"]
    day = dt.date(2012, 1, 1)
    while day <= dt.date(2015, 12, 31):
        high = round(rng.uniform(-2, 35), 1)
        lines.append(
            f"{day},{round(rng.uniform(0, 30), 1)},{high},{round(high - rng.uniform(2, 10), 1)},"
            f"{round(rng.uniform(0, 9), 1)},{rng.choice(['drizzle', 'rain', 'sun', 'snow', 'fog'])}"
        )
        day += dt.timedelta(days=1)
    return "\n".join(lines) + "\n"


def _gapminder(rng: random.Random) -> str:
    lines = ["country,continent,year,pop,lifeExp,gdpPercap"]
    continents = ["Africa", "Americas", "Asia", "Europe", "Oceania"]
    for number in range(60):  # more countries than an enum lists: continent is the category
        continent = continents[number % len(continents)]
        for year in range(1952, 2008, 5):
            lines.append(
                f"Country {number},{continent},{year},{rng.randint(50_000, 900_000_000)},"
                f"{round(rng.uniform(30, 82), 3)},{round(rng.uniform(300, 40_000), 4)}"
            )
    return "\n".join(lines) + "\n"


def _cars(rng: random.Random, *, dated: bool) -> str:
    # The cars dataset as published twice: model years as integers, or as January 1st dates.
    lines = [
        "name,mpg,cylinders,displacement,horsepower,weight,acceleration,"
        + ("year" if dated else "model_year")
        + ",origin"
    ]
    for number in range(300):
        year = rng.randint(70, 82)
        lines.append(
            f"car {number},{round(rng.uniform(9, 46), 1)},{rng.choice([4, 6, 8])},"
            f"{rng.randint(70, 455)},{rng.randint(46, 230)},{rng.randint(1600, 5100)},"
            f"{round(rng.uniform(8, 25), 1)},"
            + (f"19{year}-01-01" if dated else str(year))
            + f",{rng.choice(['USA', 'Europe', 'Japan'])}"
        )
    return "\n".join(lines) + "\n"


SHAPES = {
    "tips": lambda rng: _tips(rng),
    "weather": lambda rng: _weather(rng),
    "gapminder": lambda rng: _gapminder(rng),
    "cars": lambda rng: _cars(rng, dated=False),
    "cars_dated": lambda rng: _cars(rng, dated=True),
}
# Columns whose sum answers nothing: an example never adds them up.
NOT_ADDITIVE = {
    "unit_price",
    "temp_max",
    "temp_min",
    "wind",
    "pop",
    "life_exp",
    "gdp_percap",
    "mpg",
    "cylinders",
    "horsepower",
    "weight",
    "acceleration",
    "model_year",
    "year",
    "size",
}


@pytest.fixture(autouse=True)
def _close_files():
    yield
    duckdb_files.close_all()


@pytest.fixture
def catalog(tmp_path: Path, settings) -> list[str]:
    """The demo sales dataset and the generated shapes, imported as uploads."""
    settings.GATEWAY_PUBLIC_URL = PUBLIC_URL
    demo_load(rows=400)
    rng = random.Random(13)
    for slug, content in SHAPES.items():
        path = tmp_path / f"{slug}.csv"
        path.write_text(content(rng), encoding="utf-8")
        dataset_import(path=path, slug=slug)
    return ["sales", *SHAPES]


@pytest.fixture
def api(catalog) -> Client:
    return Client(
        headers={
            "Authorization": f"Bearer {api_key_issue(name='examples', all_datasets=True).raw_key}"
        }
    )


def _schema_examples(slugs: list[str]) -> list[str]:
    document = json.loads(Client().get("/openapi.json").content)
    urls = []
    for item in document["paths"].values():
        for operation in item.values():
            for url in EXAMPLE.findall(operation.get("description", "")):
                if "{slug}" in url:
                    urls += [url.replace("{slug}", slug) for slug in slugs]
                else:
                    urls.append(url)
    return urls


def _connect_examples() -> list[str]:
    user = User.objects.create_user("admin", password="pw", is_staff=True, is_superuser=True)
    staff = Client()
    staff.force_login(user)
    response = staff.get("/admin/connect/")
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    return RUN_BUTTON.findall(page) + INSTRUCTION.findall(page)


def _has_rows(body) -> bool:
    if isinstance(body, dict) and "results" in body:
        return len(body["results"]) > 0
    if isinstance(body, dict) and "columns" in body:
        return len(body["columns"]) > 0
    return bool(body)  # one row


def _assert_statistic_fits(url: str) -> None:
    slug = url.split("/")[4]
    for name, value in parse_qsl(urlsplit(url).query):
        if name != "metrics":
            continue
        for metric in value.split(","):
            function, _, column = metric.partition(":")
            if function == "sum":
                assert column not in NOT_ADDITIVE, url
                stored = Column.objects.get(dataset__slug=slug, name=column)
                assert stored.aggregation == "sum", url


def _assert_examples_return_rows(api: Client, urls: list[str]) -> None:
    assert urls
    empty = []
    for url in urls:
        response = api.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        if not _has_rows(response.json()):
            empty.append(url)
        _assert_statistic_fits(url)
    assert empty == [], "examples without rows:\n" + "\n".join(empty)


def test_every_schema_example_returns_rows(api, catalog):
    urls = _schema_examples(catalog)
    for slug in catalog:
        assert any(f"/datasets/{slug}/" in url for url in urls), slug
    _assert_examples_return_rows(api, urls)


def test_every_connect_page_example_returns_rows(api, catalog):
    urls = _connect_examples()
    for slug in catalog:
        assert any(f"/datasets/{slug}/" in url for url in urls), slug
    _assert_examples_return_rows(api, urls)


def test_every_example_call_returns_rows(api, catalog):
    for slug in catalog:
        _assert_examples_return_rows(api, [call.url for call in example_calls(dataset_spec(slug))])


@pytest.mark.parametrize(
    ("slug", "question"),
    [
        ("sales", "Total revenue by product in 2025 Q2"),
        ("tips", "Total bill by sex"),
        ("weather", "Total precipitation by weather in 2015 Q2"),
        ("gapminder", "Average pop by continent"),
        ("cars", "Average mpg by origin"),
        # Model years stored as January 1st: no quarter is sure to have rows, the last year is.
        ("cars_dated", "Average mpg by origin in 1982"),
    ],
)
def test_first_example_is_a_natural_question(catalog, slug, question):
    assert example_calls(dataset_spec(slug))[0].question == question


@pytest.mark.parametrize(
    ("slug", "column", "aggregation"),
    [
        ("sales", "revenue", "sum"),
        ("sales", "units", "sum"),
        ("sales", "unit_price", "average"),
        ("sales", "order_id", "none"),
        ("tips", "total_bill", "sum"),
        ("tips", "tip", "sum"),
        ("weather", "precipitation", "sum"),
        ("weather", "temp_max", "average"),
        ("gapminder", "life_exp", "average"),
        ("gapminder", "gdp_percap", "average"),
        ("gapminder", "year", "none"),
        ("cars", "mpg", "average"),
        ("cars", "model_year", "none"),
        ("cars", "name", "none"),
    ],
)
def test_aggregation_defaults_fit_the_column(catalog, slug, column, aggregation):
    assert Column.objects.get(dataset__slug=slug, name=column).aggregation == aggregation


def test_the_admin_setting_changes_the_examples(catalog):
    Column.objects.filter(dataset__slug="tips", name__in=["total_bill", "tip"]).update(
        aggregation="average"
    )
    first = example_calls(dataset_spec("tips"))[0]
    assert first.question == "Average total bill by sex"
    assert "metrics=avg:total_bill" in first.url


def test_a_column_with_a_unit_is_the_example_measure_before_one_without(catalog):
    # As flights' dep_time (a clock time) and dep_delay (minutes): the unit says which measures.
    Column.objects.filter(dataset__slug="cars", name="weight").update(unit="lb")
    first = example_calls(dataset_spec("cars"))[0]
    assert first.question == "Average weight by origin"
    assert "metrics=avg:weight" in first.url
