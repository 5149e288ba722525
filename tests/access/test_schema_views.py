"""The served documents and pages: /openapi.json, /openapi.yaml, /swagger/, /redoc/, /privacy/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.test import Client

from access.schema import DEFAULT_PRIVACY_POLICY
from datasets.models import Column, Dataset, PrivacyPolicy
from tests.datasets.schema.conftest import (
    PUBLIC_URL,
    assert_importable,
    operation_ids,
    schema_of,
)

pytestmark = pytest.mark.django_db

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body == {"error": {"status": status, "code": code, "message": body["error"]["message"]}}
    return body["error"]["message"]


def test_schema_is_public_and_lists_each_dataset(catalog, public_url):
    catalog(2, primary_key=False)
    document = schema_of(Client().get("/openapi.json"))
    assert document["openapi"] == "3.1.0"
    assert operation_ids(document) == [
        "list_datasets",
        "describe_dataset",
        "list_d01_rows",
        "aggregate_d01",
        "list_d02_rows",
        "aggregate_d02",
    ]
    assert_importable(document)


def test_schema_with_no_dataset_still_has_components_schemas(db, public_url):
    document = schema_of(Client().get("/openapi.json"))
    assert isinstance(document["components"]["schemas"], dict)
    assert_importable(document)


def test_server_is_the_public_url(catalog, public_url):
    catalog(1)
    document = schema_of(Client().get("/openapi.json", HTTP_HOST="localhost"))
    assert document["servers"] == [{"url": PUBLIC_URL}]


@pytest.mark.parametrize(
    ("host", "secure", "server"),
    [
        ("Gateway.Example.COM", True, "https://gateway.example.com"),
        ("gateway.example.com:443", True, "https://gateway.example.com"),
        ("127.0.0.1:8000", False, "http://127.0.0.1:8000"),
    ],
)
def test_server_is_the_request_base_url_without_public_url(db, settings, host, secure, server):
    settings.GATEWAY_PUBLIC_URL = None
    settings.ALLOWED_HOSTS = ["*"]
    document = schema_of(Client().get("/openapi.json", HTTP_HOST=host, secure=secure))
    assert document["servers"] == [{"url": server}]


@pytest.mark.parametrize(
    ("auth", "scheme"),
    [
        ("bearer", {"type": "http", "scheme": "bearer"}),
        ("header", {"type": "apiKey", "in": "header", "name": "X-API-Key"}),
    ],
)
def test_one_security_scheme_per_setting(catalog, public_url, settings, auth, scheme):
    catalog(1)
    settings.GATEWAY_SCHEMA_AUTH = auth
    document = schema_of(Client().get("/openapi.json"))
    schemes = document["components"]["securitySchemes"]
    assert list(schemes) == ["ApiKey"]
    assert {
        key: value for key, value in schemes["ApiKey"].items() if key != "description"
    } == scheme
    assert document["security"] == [{"ApiKey": []}]
    assert all("security" not in op for item in document["paths"].values() for op in item.values())


def test_datasets_parameter_limits_the_schema(catalog, public_url):
    catalog(3)
    document = schema_of(Client().get("/openapi.json?datasets=d03,d01"))
    assert operation_ids(document)[2:] == [
        "list_d01_rows",
        "get_d01_row",
        "aggregate_d01",
        "list_d03_rows",
        "get_d03_row",
        "aggregate_d03",
    ]
    describe = document["paths"]["/api/v1/datasets/{slug}/"]["get"]
    assert describe["parameters"][0]["schema"]["enum"] == ["d01", "d03"]


def test_unknown_dataset_in_datasets_parameter_is_a_400(catalog, public_url):
    catalog(1)
    message = _error(Client().get("/openapi.json?datasets=d01,nope"), 400, "unknown_dataset")
    assert "'nope'" in message and "d01" in message


def test_over_30_operations_is_a_400_naming_the_datasets_parameter(catalog, public_url):
    catalog(10)  # 2 + 10 x 3 = 32 operations
    message = _error(Client().get("/openapi.json"), 400, "too_many_operations")
    assert "?datasets=" in message and "32 operations" in message
    _error(Client().get("/openapi.yaml"), 400, "too_many_operations")
    _error(Client().get("/swagger/"), 400, "too_many_operations")


def test_yaml_is_the_same_document(catalog, public_url):
    catalog(1)
    response = Client().get("/openapi.yaml")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(response.content) == schema_of(Client().get("/openapi.json"))


@pytest.mark.parametrize(
    "accept", ["", "*/*", "application/json", "application/vnd.oai.openapi+json", "text/html;q=0"]
)
def test_swagger_gives_the_document_to_a_non_browser_client(catalog, public_url, accept):
    catalog(1)
    response = Client().get("/swagger/", HTTP_ACCEPT=accept)
    assert schema_of(response) == schema_of(Client().get("/openapi.json"))
    assert response["Vary"] == "Accept"


def test_swagger_open_api_json_is_an_alias(catalog, public_url):
    catalog(1)
    response = Client().get("/swagger/open_api.json?datasets=d01", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert schema_of(response) == schema_of(Client().get("/openapi.json?datasets=d01"))


def test_swagger_gives_the_ui_to_a_browser(catalog, public_url):
    catalog(1)
    response = Client().get("/swagger/?datasets=d01", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "/static/gateway/swagger-init.js" in html
    assert '"/openapi.json?datasets=d01"' in html


EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)""", re.I)
IMPORT = re.compile(r"""@import\s+(?:url\()?["']?(?:https?:)?//""", re.I)


def _assets(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)


@pytest.mark.parametrize("page", ["/swagger/", "/redoc/"])
def test_docs_pages_load_nothing_from_another_host(db, public_url, page):
    html = Client().get(page, HTTP_ACCEPT=BROWSER_ACCEPT).content.decode()
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "fonts.googleapis" not in html and "cdn." not in html
    assets = _assets(html)
    assert assets, "the page loads its scripts from this server"
    for asset in assets:
        assert asset.startswith("/static/"), asset
        path = finders.find(asset.removeprefix("/static/"))
        assert path, f"{asset} is served locally"
        if asset.endswith(".css"):
            text = Path(path).read_text(encoding="utf-8")
            assert not IMPORT.search(text)
            for url in CSS_URL.findall(text):
                assert url.startswith("data:") or not re.match(r"(https?:)?//", url), url
        if asset.endswith(".js"):
            text = Path(path).read_text(encoding="utf-8")
            # Fonts and stylesheets the script could fetch from another host.
            assert "fonts.googleapis.com" not in text and "fonts.gstatic.com" not in text


def test_swagger_ui_turns_off_the_remote_validator(db, public_url):
    from django.contrib.staticfiles import finders

    html = Client().get("/swagger/", HTTP_ACCEPT=BROWSER_ACCEPT).content.decode()
    assert "/static/gateway/swagger-init.js" in html
    assert "validatorUrl: null" in Path(finders.find("gateway/swagger-init.js")).read_text()


def test_privacy_page_has_a_default_text(db):
    response = Client().get("/privacy/")
    assert response.status_code == 200
    assert DEFAULT_PRIVACY_POLICY.split(".")[0] in response.content.decode()


def test_privacy_page_shows_the_admins_text(db):
    PrivacyPolicy.objects.create(text="We keep nothing.\n\nAsk privacy@example.com.")
    html = Client().get("/privacy/").content.decode()
    assert "<p>We keep nothing.</p>" in html and "privacy@example.com" in html


def test_schema_is_rebuilt_when_a_column_changes(catalog, public_url):
    catalog(1)
    before = schema_of(Client().get("/openapi.json"))
    assert "label" in before["components"]["schemas"]["d01_row"]["properties"]
    column = Column.objects.get(dataset__slug="d01", name="label")
    column.name = "tag"
    column.save()
    after = schema_of(Client().get("/openapi.json"))
    assert "tag" in after["components"]["schemas"]["d01_row"]["properties"]
    assert "label" not in after["components"]["schemas"]["d01_row"]["properties"]


def test_schema_is_rebuilt_when_a_dataset_is_disabled(catalog, public_url):
    catalog(2)
    Dataset.objects.filter(slug="d02").update(enabled=False)
    assert "list_d02_rows" not in operation_ids(schema_of(Client().get("/openapi.json")))


def test_schema_is_rebuilt_when_the_auth_setting_changes(catalog, public_url, settings):
    catalog(1)
    schema_of(Client().get("/openapi.json"))
    settings.GATEWAY_SCHEMA_AUTH = "header"
    document = schema_of(Client().get("/openapi.json"))
    assert document["components"]["securitySchemes"]["ApiKey"]["type"] == "apiKey"


class TestPrivateSchema:
    """GATEWAY_SCHEMA_PUBLIC=false: a key is needed, and the schema lists its datasets only."""

    @pytest.fixture(autouse=True)
    def _private(self, settings, public_url, catalog):
        settings.GATEWAY_SCHEMA_PUBLIC = False
        catalog(3)

    def test_no_key_is_a_401(self):
        _error(Client().get("/openapi.json"), 401, "unauthorized")

    def test_unknown_key_is_a_401(self):
        response = Client().get("/openapi.json", HTTP_AUTHORIZATION="Bearer gw_abc_" + "x" * 30)
        _error(response, 401, "unauthorized")

    def test_key_sees_only_its_datasets(self, raw_key):
        key = raw_key(datasets=["d02"])
        document = schema_of(Client().get("/openapi.json", HTTP_X_API_KEY=key))
        assert operation_ids(document)[2:] == ["list_d02_rows", "get_d02_row", "aggregate_d02"]

    def test_dataset_outside_the_scope_is_unknown(self, raw_key):
        key = raw_key(datasets=["d02"])
        response = Client().get("/openapi.json?datasets=d01", HTTP_AUTHORIZATION=f"Bearer {key}")
        _error(response, 400, "unknown_dataset")
