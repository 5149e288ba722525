"""A client generated from /openapi.json (openapi-python-client, as API users generate theirs) has
a model for every schema and round-trips every operation against a running server."""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import types
import typing
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from datasets.demo import demo_load
from datasets.engine.connections import duckdb_files
from datasets.schema.guide import example_calls
from datasets.selectors import dataset_spec
from datasets.services import dataset_import
from keys.services import api_key_issue

GENERATOR = shutil.which("openapi-python-client") or str(
    Path(sys.executable).with_name("openapi-python-client")
)
pytestmark = [
    pytest.mark.django_db(transaction=True),
    # CI installs the dev extras: there a missing generator fails the test instead.
    pytest.mark.skipif(
        not Path(GENERATOR).exists() and os.environ.get("CI", "").lower() != "true",
        reason="openapi-python-client is not installed (dev extras)",
    ),
]
PACKAGE = "gateway_client"

# Booleans, an integer column with few values (an enum) on which range filters apply, lower-case
# values and a date: the shapes generated clients have stumbled on.
FLAGS = "day,year,active,weather,score\n" + "".join(
    f"2024-0{1 + i % 6}-{10 + i % 15},{2000 + i % 11},{'true' if i % 3 else 'false'},"
    f"{('rain', 'sun', 'fog')[i % 3]},{i * 1.5}\n"
    for i in range(60)
)
# Calls a client must be able to send, besides the examples the schema gives.
EXTRA_CALLS = {
    "flags": [
        "/api/v1/datasets/flags/rows/?year__gte=2005&active=true&limit=5",
        "/api/v1/datasets/flags/rows/?weather=rain&year__lt=2010",
        "/api/v1/datasets/flags/aggregate/?group_by=active&metrics=count,avg:score",
    ],
}


@pytest.fixture(autouse=True)
def _close_files():
    yield
    duckdb_files.close_all()


@pytest.fixture
def served(live_server, tmp_path) -> dict:
    """The demo and a dataset with booleans and integer enums, behind a live server."""
    demo_load(rows=200)
    path = tmp_path / "flags.csv"
    path.write_text(FLAGS, encoding="utf-8")
    dataset_import(path=path, slug="flags")
    return {
        "url": live_server.url,
        "key": api_key_issue(name="client", all_datasets=True).raw_key,
        "slugs": ["sales", "flags"],
    }


def _class_name(schema_name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", schema_name))


def _generate(document: dict, directory: Path, monkeypatch) -> tuple[types.ModuleType, str]:
    spec_path = directory / "openapi.json"
    spec_path.write_text(json.dumps(document), encoding="utf-8")
    config = directory / "config.json"
    config.write_text(json.dumps({"post_hooks": []}), encoding="utf-8")
    result = subprocess.run(
        [
            GENERATOR,
            "generate",
            "--path",
            str(spec_path),
            "--meta",
            "none",
            "--output-path",
            str(directory / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=directory,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    monkeypatch.syspath_prepend(str(directory))
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]
    return importlib.import_module(PACKAGE), output


def _argument(function, name: str) -> tuple[str, type]:
    """The generated function's argument for a query parameter, and the type it takes."""
    wanted = re.sub(r"_+", "_", name)
    parameters = inspect.signature(function).parameters
    assert wanted in parameters, f"the client cannot send {name}: {list(parameters)[:20]}..."
    annotation = parameters[wanted].annotation
    kinds = [
        kind for kind in typing.get_args(annotation) or (annotation,) if "Unset" not in str(kind)
    ]
    return wanted, kinds[0]


def _value(kind, raw: str):
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(next(member.value for member in kind if str(member.value) == raw))
    if kind is bool:
        return raw == "true"
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    if kind is dt.date:
        return dt.date.fromisoformat(raw)
    if kind is dt.datetime:
        return dt.datetime.fromisoformat(raw)
    return raw


def _operation_for(url: str, slug: str) -> tuple[str, dict]:
    path = urlsplit(url).path
    if path.endswith("/aggregate/"):
        return f"aggregate_{slug}", {}
    if path.endswith("/rows/"):
        return f"list_{slug}_rows", {}
    if "/rows/" in path:
        return f"get_{slug}_row", {"pk": path.rstrip("/").rsplit("/", 1)[1]}
    return "describe_dataset", {"slug": slug}


def _call(client_package, client, operation_id: str, tag: str, url: str, path_values: dict):
    module = importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")
    kwargs = {}
    for name, raw in [*path_values.items(), *parse_qsl(urlsplit(url).query)]:
        argument, kind = _argument(module.sync_detailed, name)
        kwargs[argument] = _value(kind, raw)
    response = module.sync_detailed(client=client, **kwargs)
    assert response.status_code == 200, (url, response.content[:300])
    assert response.parsed is not None, url
    assert type(response.parsed).__name__ != "ApiError", url
    body = json.loads(response.content)
    rows = body.get("results", body.get("columns", body)) if isinstance(body, dict) else body
    assert rows, f"{url} returned no rows"


def test_generated_client_has_every_model_and_round_trips_every_operation(
    served, tmp_path, monkeypatch
):
    document = httpx.get(f"{served['url']}/openapi.json", timeout=30).json()
    package, output = _generate(document, tmp_path, monkeypatch)

    # A schema the generator cannot read is skipped with a warning: a model silently missing.
    assert "Warning" not in output and "Unable to" not in output, output
    models = importlib.import_module(f"{PACKAGE}.models")
    missing = [
        name
        for name, schema in document["components"]["schemas"].items()
        if schema.get("type") == "object" and _class_name(name) not in models.__all__
    ]
    assert missing == [], f"models dropped: {missing}\n{output}"

    client = package.AuthenticatedClient(base_url=served["url"], token=served["key"])
    tags = {
        operation["operationId"]: re.sub(
            r"[^a-z0-9]+", "_", (operation.get("tags") or ["default"])[0].lower()
        )
        for item in document["paths"].values()
        for operation in item.values()
    }
    called = set()
    for slug in served["slugs"]:
        urls = [call.url for call in example_calls(dataset_spec(slug))]
        urls += [f"/api/v1/datasets/{slug}/", f"/api/v1/datasets/{slug}/rows/1/"]
        urls += EXTRA_CALLS.get(slug, [])
        for url in urls:
            operation_id, path_values = _operation_for(url, slug)
            _call(package, client, operation_id, tags[operation_id], url, path_values)
            called.add(operation_id)
    _call(package, client, "list_datasets", tags["list_datasets"], "/api/v1/datasets/", {})
    called.add("list_datasets")
    assert called == set(tags), f"operations never called: {set(tags) - called}"
