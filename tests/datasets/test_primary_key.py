"""The primary key of an upload: the declared column, else an id-like column that is unique and
never null, else an added row_id; a column unique by chance (a population, a price) never is."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets.engine.connections import duckdb_files
from datasets.services import dataset_import

pytestmark = pytest.mark.django_db

GAPMINDER = (
    "country,continent,year,pop,lifeExp,gdpPercap\n"
    "Afghanistan,Asia,1952,8425333,28.801,779.4453145\n"
    "Afghanistan,Asia,1957,9240934,30.332,820.8530296\n"
    "Albania,Europe,1952,1282697,55.23,1601.056136\n"
    "Albania,Europe,1957,1476505,59.28,1942.284244\n"
)


@pytest.fixture(autouse=True)
def _close_files():
    yield
    duckdb_files.close_all()


def _key_of(tmp_path: Path, content: str, **options) -> str:
    path = tmp_path / "upload.csv"
    path.write_text(content, encoding="utf-8")
    dataset = dataset_import(path=path, slug="keyed", **options)
    constraint = (
        duckdb_files.cursor(str(dataset.file_path()))
        .execute(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE table_name = 'data' AND constraint_type = 'PRIMARY KEY'"
        )
        .fetchall()
    )
    physical = {column.name: column.physical_name for column in dataset.columns.all()}
    # The key the dataset publishes is the one the file indexes.
    assert [name for row in constraint for name in row[0]] == [physical[dataset.primary_key]]
    return dataset.primary_key


@pytest.mark.parametrize(
    ("content", "key"),
    [
        # id-like names, unique and never null
        ("n,id,other\n5,1,9\n3,2,8\n", "id"),
        ("code,customer_id,n\nA,7,1\nB,8,2\n", "customer_id"),
        ("name,country_code\nFrance,FR\nItaly,IT\n", "country_code"),
        ("Order ID,amount\nA-1,5\nA-2,5\n", "order_id"),
        ("key,value\nk1,1\nk2,1\n", "key"),
        ("sku_key,city_id,n\nX,1,1\nY,2,2\n", "city_id"),  # *_id before *_key
        ("id,order_id\n1,7\n2,8\n", "id"),  # id before *_id
        # unique by chance: a measure is never a key
        (GAPMINDER, "row_id"),
        ("product,price\nA,9.5\nB,12.0\n", "row_id"),
        ("city,population\nParis,2100000\nRome,2800000\n", "row_id"),
        ("limit,offset,name\n1,2,x\n3,4,y\n", "row_id"),
        # id-like but not a key: repeated, empty, or of a type a key cannot have
        ("customer_id,n\n7,1\n7,2\n", "row_id"),
        ("customer_id,n\n7,1\n,2\n", "row_id"),
        ("id,n\n1.5,1\n2.5,2\n", "row_id"),
    ],
)
def test_inferred_primary_key(tmp_path, content, key):
    assert _key_of(tmp_path, content) == key


def test_gapminder_keeps_pop_as_a_measure(tmp_path):
    path = tmp_path / "gapminder.csv"
    path.write_text(GAPMINDER, encoding="utf-8")
    dataset = dataset_import(path=path, slug="gapminder")
    columns = {column.name: column for column in dataset.columns.all()}
    assert dataset.primary_key == "row_id"
    assert columns["row_id"].position == 0
    assert columns["pop"].unique is True  # unique, yet not the key
    assert columns["pop"].aggregation == "average"
    assert columns["life_exp"].aggregation == "average"
    assert columns["year"].aggregation == "none"


@pytest.mark.parametrize(
    ("declared", "key"),
    [("pop", "pop"), ("country", None)],
)
def test_declared_key_wins_when_it_is_unique(tmp_path, declared, key):
    if key is None:
        from datasets.services import DatasetImportError

        with pytest.raises(DatasetImportError, match="duplicate values"):
            _key_of(tmp_path, GAPMINDER, primary_key=declared)
    else:
        assert _key_of(tmp_path, GAPMINDER, primary_key=declared) == key


@pytest.mark.parametrize(
    ("name", "id_like"),
    [
        ("id", True),
        ("key", True),
        ("code", True),
        ("customer_id", True),
        ("country_code", True),
        ("sku_key", True),
        ("uuid", True),
        ("pop", False),
        ("idea", False),
        ("video", False),
        ("price", False),
        ("keyword", False),
    ],
)
def test_id_like_names(name, id_like):
    from datasets.ingest import ID_LIKE, id_like_rank

    assert (id_like_rank(name) < len(ID_LIKE)) is id_like
