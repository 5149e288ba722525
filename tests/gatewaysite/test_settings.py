"""Settings come from the environment; bad values stop start-up with the variable named."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from datasets.models import Column, Dataset
from datasets.services import dataset_import
from gatewaysite import env
from tests.servers import server_environment
from tests.services import POSTGRES_URL, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


def _start(tmp_path, *arguments: str, **variables) -> subprocess.CompletedProcess:
    """Start Django in a fresh process with only these variables (and `arguments` to manage.py)."""
    environment = server_environment(tmp_path)
    environment.update(variables)
    command = ["manage.py", *arguments] if arguments else ["-c", "import django; django.setup()"]
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_DEBUG", "perhaps"),
        ("DATABASE_URL", "nonsense"),
        ("REDIS_URL", "localhost:6379"),
        ("GATEWAY_MAX_RESPONSE_CHARS", "lots"),
        ("GATEWAY_DEFAULT_RATE", "fast"),
        ("GATEWAY_SCHEMA_AUTH", "cookie"),
        ("GATEWAY_PUBLIC_URL", "gateway.example.com"),
        ("GATEWAY_BEHIND_PROXY", "perhaps"),
        ("GATEWAY_HSTS_SECONDS", "a year"),
        ("GATEWAY_LOGIN_RATE", "ten"),
        ("GATEWAY_FAILED_AUTH_RATE", "many"),
        ("GATEWAY_STORAGE_URL", "https://bucket.example/prefix"),
        ("GATEWAY_STORAGE_URL", "s3://No_Such Bucket/prefix"),
        ("GATEWAY_STORAGE_ENDPOINT", "127.0.0.1:8333"),
        ("GATEWAY_CACHE_MB", "0"),
        ("GATEWAY_STORAGE_RETENTION_HOURS", "a day"),
    ],
)
def test_invalid_value_stops_startup_naming_the_variable(tmp_path, variable, value):
    result = _start(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.splitlines()[-1]


def test_defaults_start_and_keep_one_generated_secret_key(tmp_path):
    assert _start(tmp_path).returncode == 0
    first = (tmp_path / "secret_key").read_text()
    assert _start(tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text() == first
    assert len(first) >= 50


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("s3://gateway-versions/prod", ("gateway-versions", "prod")),
        ("s3://gateway-versions/a/b/", ("gateway-versions", "a/b")),
        ("s3://gateway-versions", ("gateway-versions", "")),
    ],
)
def test_the_storage_url_names_a_bucket_and_a_prefix(monkeypatch, raw, expected):
    monkeypatch.setenv("GATEWAY_STORAGE_URL", raw)
    assert env.storage_url("GATEWAY_STORAGE_URL") == expected


class TestHelpers:
    valid = [
        (env.env_bool, "true", True),
        (env.env_bool, "No", False),
        (env.env_bool, "1", True),
        (env.env_int, "42", 42),
        (env.env_rate, "60/m", "60/m"),
        (env.env_rate, "1000/h", "1000/h"),
        (env.env_list, "a, b,,c", ["a", "b", "c"]),
    ]
    invalid = [
        (env.env_bool, "perhaps"),
        (env.env_int, "4.5"),
        (env.env_int, "-1"),
        (env.env_rate, "60 per minute"),
    ]

    @pytest.mark.parametrize(("reader", "raw", "expected"), valid)
    def test_valid(self, monkeypatch, reader, raw, expected):
        monkeypatch.setenv("GATEWAY_X", raw)
        default = {env.env_bool: False, env.env_int: 0, env.env_rate: "1/s", env.env_list: []}[
            reader
        ]
        assert reader("GATEWAY_X", default) == expected

    @pytest.mark.parametrize(("reader", "raw"), invalid)
    def test_invalid(self, monkeypatch, reader, raw):
        monkeypatch.setenv("GATEWAY_X", raw)
        default = {env.env_bool: False, env.env_int: 0, env.env_rate: "1/s"}[reader]
        with pytest.raises(ImproperlyConfigured, match="GATEWAY_X"):
            reader("GATEWAY_X", default)


def test_env_example_lists_every_variable_the_settings_read():
    settings_source = (ROOT / "gatewaysite" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\("([A-Z_]+)"', settings_source)) | set(
        re.findall(r'(?:public_url|secret_key|storage_url)\("([A-Z_]+)"', settings_source)
    )
    # Variables read straight from the environment elsewhere (the server, the demo command).
    for path in (ROOT / "gatewaysite").glob("*.py"):
        read |= set(re.findall(r'environ\.get\("([A-Z_]+)"', path.read_text()))
    for path in (ROOT / "datasets" / "management" / "commands").glob("*.py"):
        read |= set(re.findall(r'environ\.get\("(GATEWAY_[A-Z_]+)"', path.read_text()))
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert read, "no variables found in settings.py"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"


# -- Production: `manage.py check --deploy` and https ---------------------------------------------

PRODUCTION = {"GATEWAY_PUBLIC_URL": "https://gateway.example.com", "GATEWAY_DEBUG": "false"}


def _deploy_check(tmp_path, **variables) -> subprocess.CompletedProcess:
    return _start(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **variables)


def test_check_deploy_is_clean_with_the_production_settings(tmp_path):
    result = _deploy_check(tmp_path, **PRODUCTION)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNINGS" not in output


def test_check_deploy_is_clean_on_postgresql_and_redis(tmp_path, postgres, redis):
    # The README's production command: PostgreSQL as Django's database, Redis as the cache.
    database_url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    result = _deploy_check(tmp_path, DATABASE_URL=database_url, REDIS_URL=REDIS_URL, **PRODUCTION)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output


HTTPS_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client()
answers = {}
plain = client.get("/no-such-page")
answers["http"] = [plain.status_code, plain.headers.get("Location")]
health = client.get("/healthz")
answers["healthz"] = health.status_code
proxied = client.get("/no-such-page", headers={"X-Forwarded-Proto": "https"})
answers["proxied"] = [proxied.status_code, proxied.headers.get("Strict-Transport-Security")]
login = client.get("/admin/login/", headers={"X-Forwarded-Proto": "https"}, secure=True)
cookie = login.cookies.get("csrftoken")
answers["csrf_cookie_secure"] = bool(cookie and cookie["secure"])
answers["session_cookie_secure"] = settings.SESSION_COOKIE_SECURE
print(json.dumps(answers))
"""


def _https_answers(tmp_path, **variables) -> dict:
    environment = server_environment(tmp_path, GATEWAY_ALLOWED_HOSTS="testserver")
    environment.update(variables)
    result = subprocess.run(
        [sys.executable, "-c", HTTPS_PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_https_public_url_redirects_http_and_secures_cookies_behind_a_proxy(tmp_path):
    answers = _https_answers(tmp_path, GATEWAY_PUBLIC_URL="https://gateway.example.com")
    assert answers["http"] == [301, "https://gateway.example.com/no-such-page"]
    # Load balancers probe instances over plain http.
    assert answers["healthz"] != 301
    # The proxy says the request came over https: served, with HSTS.
    assert answers["proxied"] == [404, "max-age=31536000"]
    assert answers["csrf_cookie_secure"] is True
    assert answers["session_cookie_secure"] is True


def test_without_a_proxy_the_forwarded_scheme_is_not_trusted(tmp_path):
    answers = _https_answers(
        tmp_path, GATEWAY_PUBLIC_URL="https://gateway.example.com", GATEWAY_BEHIND_PROXY="false"
    )
    assert answers["proxied"][0] == 301


def test_http_or_no_public_url_keeps_plain_http(tmp_path):
    for variables in ({}, {"GATEWAY_PUBLIC_URL": "http://gateway.example.com"}):
        answers = _https_answers(tmp_path, **variables)
        assert answers["http"] == [404, None], variables
        assert answers["proxied"] == [404, None], variables
        assert answers["session_cookie_secure"] is False, variables


# -- Large forms -----------------------------------------------------------------------------------


class FormFields(HTMLParser):
    """The fields a browser would send for one <form>: (name, value) pairs."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.fields: list[tuple[str, str]] = []
        self._inside = False
        self._select: str | None = None
        self._selected: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self._inside = attributes.get("id") == self.form_id
        if not self._inside or "name" not in attributes and tag != "option":
            return
        if tag == "input":
            kind = attributes.get("type", "text")
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attributes:
                return
            self.fields.append((attributes["name"], attributes.get("value") or ""))
        elif tag == "select":
            self._select, self._selected, self._first_option = attributes["name"], None, None
        elif tag == "option" and self._select is not None:
            value = attributes.get("value") or ""
            if self._first_option is None:
                self._first_option = value
            if "selected" in attributes:
                self._selected = value
        elif tag == "textarea":
            self._textarea = attributes["name"]
            self.fields.append((self._textarea, ""))

    def handle_data(self, data):
        if self._textarea is not None:
            name, value = self.fields[-1]
            self.fields[-1] = (name, value + data)

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False
        elif tag == "select" and self._select is not None:
            chosen = self._selected if self._selected is not None else self._first_option
            self.fields.append((self._select, chosen or ""))
            self._select = None
        elif tag == "textarea":
            self._textarea = None


@pytest.mark.django_db
def test_a_dataset_of_150_columns_saves_through_the_admin_change_form(admin_client, tmp_path):
    names = ["id", *[f"measure_{number}" for number in range(1, 150)]]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + ",".join(str(n) for n in range(150)) + "\n")
    dataset = dataset_import(path=path, slug="wide", primary_key="id")
    assert Column.objects.filter(dataset=dataset).count() == 150
    url = f"/admin/datasets/dataset/{dataset.pk}/change/"

    page = admin_client.get(url)
    assert page.status_code == 200
    parser = FormFields("dataset_form")
    parser.feed(page.content.decode())
    fields = dict(parser.fields)
    assert len(parser.fields) > 1000, "the form must send more fields than Django's default allows"
    last = next(
        name for name, value in parser.fields if value == "measure_149" and name.endswith("-name")
    )
    fields[last.replace("-name", "-description")] = "The last measure."
    fields["_save"] = "Save"

    response = admin_client.post(url, fields)
    assert response.status_code == 302, response.content[:2000]
    assert Column.objects.get(dataset=dataset, physical_name="measure_149").description == (
        "The last measure."
    )
    assert Dataset.objects.get(pk=dataset.pk).title == dataset.title


def test_a_dot_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / "gateway.env"
    env_file.write_text("GATEWAY_DEFAULT_RATE=7/m\nGATEWAY_MAX_RESPONSE_CHARS=5000\n")
    shown = "from django.conf import settings; print(settings.GATEWAY_DEFAULT_RATE, settings.GATEWAY_MAX_RESPONSE_CHARS)"
    result = _start(
        tmp_path,
        "shell",
        "-c",
        shown,
        GATEWAY_ENV_FILE=str(env_file),
        GATEWAY_MAX_RESPONSE_CHARS="9000",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["7/m", "9000"]


def test_an_invalid_value_in_the_dot_env_file_names_the_variable(tmp_path):
    env_file = tmp_path / "gateway.env"
    env_file.write_text("GATEWAY_DEBUG=perhaps\n")
    result = _start(tmp_path, GATEWAY_ENV_FILE=str(env_file))
    assert result.returncode != 0 and "GATEWAY_DEBUG" in result.stderr
