"""The admin's permission matrix: every admin page, custom view and action, for each staff role.

One row per URL or action: (method, URL, what it does, expected status for each role). Roles:

- `none`: a staff user without any permission;
- `view`: a staff user with every "Can view ..." permission;
- `data`: a staff user with every permission on sources, datasets and columns, nothing else;
- `super`: a superuser.

A write refused to a role must leave the database exactly as it was (every row of every
model of Gateway, Django's users and groups and the admin log), whatever the status; a write
allowed to a role must change it. Every URL the admin serves and every action it offers has a
row here (a test checks it), so a new view or action cannot ship without its permission.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, resolve
from django.utils import timezone
from oauth2_provider.models import AccessToken

from accounts.models import AccessGrant
from accounts.services import gpt_actions_client_create
from datasets.engine.connections import duckdb_files
from datasets.models import Dataset, DatasetImport, PrivacyPolicy, Source
from datasets.services import dataset_import
from datasets.sources import dataset_register, source_create
from keys.models import UsageRecord
from keys.services import api_key_issue

pytestmark = pytest.mark.django_db

ROLES = ("none", "view", "data", "super")
CSV = b"order_id,region,amount_eur\n1,EU,10.5\n2,US,20\n3,EU,7\n"
NEW_CSV = b"order_id,region,amount_eur\n7,APAC,1\n8,EU,2\n"

READ = "read"  # never changes anything
WRITE = "write"  # changes the database when allowed, nothing otherwise
TEST = "test"  # reaches the source when allowed (a message says so), nothing otherwise


@dataclass(frozen=True)
class Row:
    """One admin URL or action and its expected status for none, view, data and super."""

    method: str
    url: str
    kind: str
    statuses: tuple[int, int, int, int]
    data: Callable[[dict], dict] | None = None
    action: str = ""

    @property
    def label(self) -> str:
        return f"{self.method} {self.url}" + (f" action={self.action}" if self.action else "")


def _action(name: str, target: str) -> Callable[[dict], dict]:
    """An action on one object, as the list submits it (confirmed, for delete_selected)."""

    def data(world: dict) -> dict:
        return {"action": name, "_selected_action": [world[target]], "post": "yes"}

    return data


def _form(url: str, **changes) -> Callable[[dict], dict]:
    """The change form as a browser would submit it (read as superuser), with `changes`."""

    def data(world: dict) -> dict:
        fields = form_fields(world["superuser"].get(url.format(**world)))
        fields.update(
            {name: value(world) if callable(value) else value for name, value in changes.items()}
        )
        return fields

    return data


def _key_add(world: dict) -> dict:
    return {
        "name": "Issued by the matrix",
        "owner": "",
        "all_datasets": "on",
        "rate": "",
        "quota_per_day": "",
        "expires_at_0": "",
        "expires_at_1": "",
        "row_filters-TOTAL_FORMS": "0",
        "row_filters-INITIAL_FORMS": "0",
        "row_filters-MIN_NUM_FORMS": "0",
        "row_filters-MAX_NUM_FORMS": "1000",
    }


def _dataset_add(world: dict) -> dict:
    upload = SimpleUploadedFile("fresh.csv", CSV, content_type="text/csv")
    return {
        "slug": "fresh",
        "title": "",
        "description": "",
        "primary_key_column": "",
        "file": upload,
    }


def _dataset_replace(world: dict) -> dict:
    return {"file": SimpleUploadedFile("v2.csv", NEW_CSV, content_type="text/csv")}


def _source_add(world: dict) -> dict:
    return {"name": "added", "url": world["spare_url"], "password": "", "statement_timeout": "10"}


def _discover_register(world: dict) -> dict:
    return {
        "rows": "1",
        "register": ["0"],
        "table-0": "parts",
        "schema-0": "",
        "name-0": "parts",
        "kind-0": "table",
        "slug-0": "parts",
        "pk-0": "",
    }


def _user_add(world: dict) -> dict:
    return {
        "username": "newcomer",
        "usable_password": "true",
        "password1": "Tr1cky-passphrase-42",
        "password2": "Tr1cky-passphrase-42",
    }


def _password(world: dict) -> dict:
    return {
        "usable_password": "true",
        "password1": "An0ther-passphrase-42",
        "password2": "An0ther-passphrase-42",
    }


KEY = "/admin/keys/apikey/{key}"
USAGE = "/admin/keys/usagerecord"
DATASET = "/admin/datasets/dataset/{orders}"
IMPORT = "/admin/datasets/dataset/import/{failed_import}"
SOURCE = "/admin/datasets/source/{source}"
SPARE = "/admin/datasets/source/{spare}"
POLICY = "/admin/datasets/privacypolicy/{policy}"
USER = "/admin/auth/user/{other}"
GROUP = "/admin/auth/group/{group}"
GRANT = "/admin/accounts/accessgrant/{grant}"
GPT = "/admin/accounts/gptactionsclient/{gpt}"
APP = "/admin/accounts/connectedapp/{app}"
TOKEN = "/admin/accounts/apptoken/{token}"
OK, REDIRECT, DENIED, MISSING = 200, 302, 403, 404
# A refused action: 403 without the view permission, else the list again (200), unchanged.
REFUSED = (DENIED, OK, DENIED)


def CONFIRMED(world: dict) -> dict:
    """What a delete page's confirmation submits."""
    return {"post": "yes"}


# fmt: off
MATRIX = [
    #    method  URL                                   kind   none     view    data      super     POST data, action
    Row("GET",  "/admin/",                             READ,  (OK,      OK,     OK,       OK)),
    Row("GET",  "/admin/connect/",                     READ,  (OK,      OK,     OK,       OK)),
    Row("GET",  "/admin/keys/",                        READ,  (MISSING, OK,     MISSING,  OK)),
    Row("GET",  "/admin/datasets/",                    READ,  (MISSING, OK,     OK,       OK)),
    Row("GET",  "/admin/auth/",                        READ,  (MISSING, OK,     MISSING,  OK)),
    # API keys: issuing needs "add", revoking and editing "change", rotating both (a new secret)
    Row("GET",  "/admin/keys/apikey/",                 READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  "/admin/keys/apikey/add/",             READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", "/admin/keys/apikey/add/",             WRITE, (DENIED,  DENIED, DENIED,   OK),       _key_add),
    Row("GET",  f"{KEY}/change/",                      READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("POST", f"{KEY}/change/",                      WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), _form(f"{KEY}/change/", name="Renamed", all_datasets="on")),
    Row("GET",  f"{KEY}/history/",                     READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{KEY}/delete/",                      READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", f"{KEY}/delete/",                      WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), CONFIRMED),
    Row("GET",  f"{KEY}/revoke/",                      READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", f"{KEY}/revoke/",                      WRITE, (DENIED,  DENIED, DENIED,   REDIRECT)),
    Row("GET",  f"{KEY}/rotate/",                      READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", f"{KEY}/rotate/",                      WRITE, (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", "/admin/keys/apikey/",                 WRITE, (*REFUSED,                  REDIRECT), _action("revoke_selected", "key"), "revoke_selected"),
    Row("POST", "/admin/keys/apikey/",                 WRITE, (*REFUSED,                  REDIRECT), _action("delete_selected", "key"), "delete_selected"),
    # Usage records: written by the API only, so no add or change page, even for a superuser
    Row("GET",  f"{USAGE}/",                           READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{USAGE}/datasets/",                  READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{USAGE}/datasets/orders/",           READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{USAGE}/add/",                       READ,  (DENIED,  DENIED, DENIED,   DENIED)),
    Row("GET",  f"{USAGE}/{{usage}}/change/",          READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("POST", f"{USAGE}/{{usage}}/change/",          WRITE, (DENIED,  DENIED, DENIED,   DENIED),   lambda world: {"status": "200"}),
    Row("GET",  f"{USAGE}/{{usage}}/history/",         READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{USAGE}/{{usage}}/delete/",          READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", f"{USAGE}/{{usage}}/delete/",          WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), CONFIRMED),
    # Usage records have no list actions: they are pruned by age (prune_usage).
    # Datasets (their columns are edited on the dataset's page)
    Row("GET",  "/admin/datasets/dataset/",            READ,  (DENIED,  OK,     OK,       OK)),
    Row("GET",  "/admin/datasets/dataset/add/",        READ,  (DENIED,  DENIED, OK,       OK)),
    Row("POST", "/admin/datasets/dataset/add/",        WRITE, (DENIED,  DENIED, REDIRECT, REDIRECT), _dataset_add),
    Row("GET",  f"{DATASET}/change/",                  READ,  (DENIED,  OK,     OK,       OK)),
    Row("POST", f"{DATASET}/change/",                  WRITE, (DENIED,  DENIED, REDIRECT, REDIRECT), _form(f"{DATASET}/change/", title="Renamed", **{"columns-0-description": "The order."})),
    Row("GET",  f"{DATASET}/history/",                 READ,  (DENIED,  OK,     OK,       OK)),
    Row("GET",  f"{DATASET}/delete/",                  READ,  (DENIED,  DENIED, OK,       OK)),
    Row("POST", f"{DATASET}/delete/",                  WRITE, (DENIED,  DENIED, REDIRECT, REDIRECT), CONFIRMED),
    Row("GET",  f"{DATASET}/replace/",                 READ,  (DENIED,  DENIED, OK,       OK)),
    Row("POST", f"{DATASET}/replace/",                 WRITE, (DENIED,  DENIED, REDIRECT, REDIRECT), _dataset_replace),
    Row("GET",  f"{IMPORT}/",                          READ,  (DENIED,  OK,     OK,       OK)),
    Row("GET",  f"{IMPORT}/status/",                   READ,  (DENIED,  OK,     OK,       OK)),
    Row("POST", "/admin/datasets/dataset/",            WRITE, (DENIED,  OK,     REDIRECT, REDIRECT), _action("delete_selected", "orders"), "delete_selected"),
    Row("POST", "/admin/datasets/dataset/",            WRITE, (DENIED,  OK,     REDIRECT, REDIRECT), _action("confirm_suggested_units", "orders"), "confirm_suggested_units"),
    # Sources
    Row("GET",  "/admin/datasets/source/",             READ,  (DENIED,  OK,     OK,       OK)),
    Row("GET",  "/admin/datasets/source/add/",         READ,  (DENIED,  DENIED, OK,       OK)),
    Row("POST", "/admin/datasets/source/add/",         WRITE, (DENIED,  DENIED, REDIRECT, REDIRECT), _source_add),
    Row("GET",  f"{SOURCE}/change/",                   READ,  (DENIED,  OK,     OK,       OK)),
    Row("POST", f"{SOURCE}/change/",                   WRITE, (DENIED,  DENIED, REDIRECT, REDIRECT), _form(f"{SOURCE}/change/", name="renamed")),
    Row("GET",  f"{SOURCE}/history/",                  READ,  (DENIED,  OK,     OK,       OK)),
    Row("GET",  f"{SPARE}/delete/",                    READ,  (DENIED,  DENIED, OK,       OK)),
    Row("POST", f"{SPARE}/delete/",                    WRITE, (DENIED,  DENIED, REDIRECT, REDIRECT), CONFIRMED),
    Row("GET",  f"{SOURCE}/test-connection/",          TEST,  (DENIED,  DENIED, REDIRECT, REDIRECT)),
    Row("GET",  f"{SOURCE}/discover/",                 READ,  (DENIED,  DENIED, OK,       OK)),
    Row("POST", f"{SOURCE}/discover/",                 WRITE, (DENIED,  DENIED, REDIRECT, REDIRECT), _discover_register),
    Row("POST", f"{SOURCE}/refresh-statistics/",       WRITE, (DENIED,  DENIED, REDIRECT, REDIRECT)),
    Row("POST", "/admin/datasets/source/",             TEST,  (DENIED,  OK,     REDIRECT, REDIRECT), _action("test_connection", "source"), "test_connection"),
    Row("POST", "/admin/datasets/source/",             WRITE, (DENIED,  OK,     REDIRECT, REDIRECT), _action("refresh_statistics", "source"), "refresh_statistics"),
    Row("POST", "/admin/datasets/source/",             WRITE, (DENIED,  OK,     REDIRECT, REDIRECT), _action("delete_selected", "spare"), "delete_selected"),
    # Privacy policy
    Row("GET",  "/admin/datasets/privacypolicy/",      READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  "/admin/datasets/privacypolicy/add/",  READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", "/admin/datasets/privacypolicy/add/",  WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), lambda world: {"text": "Another policy."}),
    Row("GET",  f"{POLICY}/change/",                   READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("POST", f"{POLICY}/change/",                   WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), lambda world: {"text": "Changed policy."}),
    Row("GET",  f"{POLICY}/history/",                  READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{POLICY}/delete/",                   READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", f"{POLICY}/delete/",                   WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), CONFIRMED),
    Row("POST", "/admin/datasets/privacypolicy/",      WRITE, (*REFUSED,                  REDIRECT), _action("delete_selected", "policy"), "delete_selected"),
    # Django's users and groups: making someone a superuser is a write like any other
    Row("GET",  "/admin/auth/user/",                   READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  "/admin/auth/user/add/",               READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", "/admin/auth/user/add/",               WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), _user_add),
    Row("GET",  f"{USER}/change/",                     READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("POST", f"{USER}/change/",                     WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), _form(f"{USER}/change/", is_superuser="on", is_staff="on")),
    Row("GET",  f"{USER}/history/",                    READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{USER}/password/",                   READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", f"{USER}/password/",                   WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), _password),
    Row("GET",  f"{USER}/delete/",                     READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", f"{USER}/delete/",                     WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), CONFIRMED),
    Row("POST", "/admin/auth/user/",                   WRITE, (*REFUSED,                  REDIRECT), _action("delete_selected", "other"), "delete_selected"),
    Row("GET",  "/admin/auth/group/",                  READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  "/admin/auth/group/add/",              READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", "/admin/auth/group/add/",              WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), lambda world: {"name": "another group"}),
    Row("GET",  f"{GROUP}/change/",                    READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("POST", f"{GROUP}/change/",                    WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), lambda world: {"name": "renamed", "permissions": [world["change_apikey"]]}),
    Row("GET",  f"{GROUP}/history/",                   READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{GROUP}/delete/",                    READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", f"{GROUP}/delete/",                    WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), CONFIRMED),
    Row("POST", "/admin/auth/group/",                  WRITE, (*REFUSED,                  REDIRECT), _action("delete_selected", "group"), "delete_selected"),
    # OAuth: grants of users and groups, GPT Actions clients (docs/oauth.md)
    Row("GET",  "/admin/accounts/accessgrant/",        READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  "/admin/accounts/accessgrant/add/",    READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("GET",  f"{GRANT}/change/",                    READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{GRANT}/history/",                   READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{GRANT}/delete/",                    READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", "/admin/accounts/accessgrant/",        WRITE, (*REFUSED,                  REDIRECT), _action("delete_selected", "grant"), "delete_selected"),
    Row("GET",  "/admin/accounts/gptactionsclient/",   READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  "/admin/accounts/gptactionsclient/add/", READ, (DENIED, DENIED, DENIED,   OK)),
    Row("POST", "/admin/accounts/gptactionsclient/add/", WRITE, (DENIED, DENIED, DENIED,  OK), lambda world: {"name": "Another GPT"}),
    Row("GET",  f"{GPT}/change/",                      READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{GPT}/history/",                     READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{GPT}/delete/",                      READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", "/admin/accounts/gptactionsclient/",   WRITE, (*REFUSED,                  REDIRECT), _action("delete_selected", "gpt"), "delete_selected"),
    # Connected apps and people's access tokens: read-only pages; revoking needs its own permission
    Row("GET",  "/admin/accounts/connectedapp/",       READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  "/admin/accounts/connectedapp/add/",   READ,  (DENIED,  DENIED, DENIED,   DENIED)),
    Row("GET",  f"{APP}/change/",                      READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("POST", f"{APP}/change/",                      WRITE, (DENIED,  DENIED, DENIED,   DENIED),   lambda world: {"name": "Renamed"}),
    Row("GET",  f"{APP}/history/",                     READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{APP}/delete/",                      READ,  (DENIED,  DENIED, DENIED,   OK)),
    Row("POST", f"{APP}/delete/",                      WRITE, (DENIED,  DENIED, DENIED,   REDIRECT), CONFIRMED),
    Row("POST", "/admin/accounts/connectedapp/",       WRITE, (*REFUSED,                  REDIRECT), _action("revoke_access", "app"), "revoke_access"),
    Row("POST", "/admin/accounts/connectedapp/",       WRITE, (*REFUSED,                  REDIRECT), _action("delete_selected", "app"), "delete_selected"),
    Row("GET",  "/admin/accounts/apptoken/",           READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  "/admin/accounts/apptoken/add/",       READ,  (DENIED,  DENIED, DENIED,   DENIED)),
    Row("GET",  f"{TOKEN}/change/",                    READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("POST", f"{TOKEN}/change/",                    WRITE, (DENIED,  DENIED, DENIED,   DENIED),   lambda world: {"scope": "other"}),
    Row("GET",  f"{TOKEN}/history/",                   READ,  (DENIED,  OK,     DENIED,   OK)),
    Row("GET",  f"{TOKEN}/delete/",                    READ,  (DENIED,  DENIED, DENIED,   DENIED)),
    Row("POST", "/admin/accounts/apptoken/",           WRITE, (*REFUSED,                  REDIRECT), _action("revoke_selected", "token"), "revoke_selected"),
    Row("POST", "/admin/accounts/apptoken/",           READ,  (*REFUSED,                  REDIRECT), _action("delete_selected", "token"), "delete_selected"),  # no such action: tokens are revoked
]
# fmt: on

CASES = [
    pytest.param(row, index, id=f"{ROLES[index]}: {row.label}")
    for row in MATRIX
    for index in range(len(ROLES))
]


class _FormFields(HTMLParser):
    """The fields a browser submits from the admin's change form (`<form id="..._form">`)."""

    def __init__(self):
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._select: tuple[str, bool, list[str], list[str]] | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("id") or "").endswith("_form"):
            self._in_form = True
        if not self._in_form:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = (attrs.get("type") or "text").lower()
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.fields.append((name, attrs.get("value") or ("on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select = (name, "multiple" in attrs, [], [])
        elif tag == "option" and self._select is not None:
            value = attrs.get("value") or ""
            self._select[3].append(value)
            if "selected" in attrs:
                self._select[2].append(value)
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data):
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select is not None:
            name, multiple, chosen, options = self._select
            if not chosen and not multiple and options:
                chosen = options[:1]
            self.fields.extend((name, value) for value in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def form_fields(response) -> dict:
    """The POST data of the change form on an admin page (lists for repeated names)."""
    assert response.status_code == 200, response.status_code
    parser = _FormFields()
    parser.feed(response.content.decode())
    data: dict = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(value)
    return {name: values if len(values) > 1 else values[0] for name, values in data.items()}


def snapshot() -> dict:
    """Every row of every model of Gateway, of Django's users and groups, and the admin log."""
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values())
        for label in ("datasets", "keys", "auth", "admin", "accounts", "oauth2_provider")
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
    }


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory) -> Path:
    """A SQLite database with two tables, written once and copied for each source."""
    path = tmp_path_factory.mktemp("sources") / "shop.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            """
            CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT);
            INSERT INTO items VALUES (1, 'spoon'), (2, 'fork');
            CREATE TABLE parts (id INTEGER PRIMARY KEY, name TEXT);
            INSERT INTO parts VALUES (1, 'handle');
            """
        )
    connection.close()
    return path


def _sqlite(template: Path, path: Path) -> str:
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def _staff(username: str, permissions) -> Client:
    # No password: hashing one per role would cost more than the request under test.
    user = User.objects.create(username=username, is_staff=True)
    user.user_permissions.set(permissions)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(tmp_path, shop_file) -> dict:
    """One object of every kind the admin edits, and a client per role."""
    upload = tmp_path / "orders.csv"
    upload.write_bytes(CSV)
    orders = dataset_import(path=upload, slug="orders")
    source = source_create(name="shop", url=_sqlite(shop_file, tmp_path / "shop.db"))
    items = dataset_register(source=source, table="items", slug="items")
    Dataset.objects.filter(pk=items.pk).update(row_count=999)  # stale: a refresh changes it
    failed_import = DatasetImport.objects.create(
        slug="orders",
        dataset=orders,
        replace=True,
        filename="v2.csv",
        state=DatasetImport.State.FAILED,
        message="Line 3 has 5 fields.",
        finished=timezone.now(),
    )
    spare = source_create(name="spare", url=_sqlite(shop_file, tmp_path / "spare.db"))
    key = api_key_issue(name="Sales GPT", datasets=["orders"]).key
    usage = UsageRecord.objects.create(
        time="2025-01-01T00:00:00Z",
        key_id=key.key_id,
        dataset="orders",
        operation="rows",
        status=200,
        duration_ms=1.0,
        rows=3,
    )
    policy = PrivacyPolicy.objects.create(text="Our policy.")
    other = User.objects.create(username="other")
    group = Group.objects.create(name="editors")
    grant = AccessGrant.objects.create(group=group)
    gpt = gpt_actions_client_create(name="Sales GPT").application.gpt_actions
    token = AccessToken.objects.create(
        user=other,
        application=gpt.application,
        token="gwo_matrix-token",
        expires=timezone.now() + timedelta(hours=1),
        scope="datasets",
    )
    gateway_data = ContentType.objects.get_for_models(
        Source, Dataset, apps.get_model("datasets.Column")
    )
    clients = {
        "none": _staff("nobody", []),
        "view": _staff("viewer", Permission.objects.filter(codename__startswith="view_")),
        "data": _staff("editor", Permission.objects.filter(content_type__in=gateway_data.values())),
        "super": Client(),
    }
    clients["super"].force_login(
        User.objects.create(username="boss", is_staff=True, is_superuser=True)
    )
    yield {
        "clients": clients,
        "superuser": clients["super"],
        "key": key.pk,
        "usage": usage.pk,
        "orders": orders.pk,
        "failed_import": failed_import.pk,
        "items": items.pk,
        "source": source.pk,
        "spare": spare.pk,
        "spare_url": _sqlite(shop_file, tmp_path / "added.db"),
        "policy": policy.pk,
        "other": other.pk,
        "group": group.pk,
        "grant": grant.pk,
        "gpt": gpt.pk,
        "app": gpt.application_id,
        "token": token.pk,
        "change_apikey": Permission.objects.get(codename="change_apikey").pk,
    }
    duckdb_files.close_all()


@pytest.mark.parametrize(("row", "role"), CASES)
def test_admin_permission_matrix(world, row: Row, role: int):
    client = world["clients"][ROLES[role]]
    url = row.url.format(**world)
    data = row.data(world) if row.data else {}
    before = snapshot()
    response = client.get(url) if row.method == "GET" else client.post(url, data)
    changed = snapshot() != before
    expected = row.statuses[role]
    # Allowed: the page answers (200), or the write is done and redirects (302); a refused
    # action shows the list again (200) without doing anything.
    allowed = expected in (OK, REDIRECT) and not (row.action and expected == OK)
    who = f"{ROLES[role]}: {row.label}"
    if row.kind == WRITE:
        assert changed == allowed, who + (
            " changed the database without the permission" if changed else " changed nothing"
        )
    else:
        assert not changed, f"{who} is a read and changed the database"
    assert response.status_code == expected, (
        f"{who} answered {response.status_code}, not {expected}"
    )
    if row.kind == TEST:
        said = " ".join(str(message) for message in get_messages(response.wsgi_request))
        assert ("Connection to shop works" in said) == allowed, said


def _admin_url_names() -> set[str]:
    """The name of every URL the admin site serves (pages a staff user can open)."""
    names: set[str] = set()

    def walk(patterns) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and pattern.name:
                names.add(pattern.name)

    walk(admin.site.get_urls())
    # Django's own account pages, the JavaScript catalog and helpers that check permissions
    # themselves (autocomplete checks the view permission of the field's model).
    return names - {
        "login",
        "logout",
        "password_change",
        "password_change_done",
        "jsi18n",
        "autocomplete",
        "view_on_site",
    }


def test_every_admin_url_has_a_row_in_the_matrix(world):
    covered = {resolve(row.url.format(**world)).url_name for row in MATRIX}
    missing = _admin_url_names() - covered
    assert not missing, f"admin URLs without a row in the permission matrix: {sorted(missing)}"
    assert "admin-connect" in covered


def test_every_admin_action_has_a_row_and_declares_its_permission(world):
    rows = {
        (resolve(row.url.format(**world)).func.model_admin.model, row.action)
        for row in MATRIX
        if row.action
    }
    for model, model_admin in admin.site._registry.items():
        if model_admin.actions is None:
            continue  # Django offers no action at all on this list (ModelAdmin.get_actions)
        for function, name, _ in model_admin._get_base_actions():
            label = f"{model._meta.label} action {name}"
            assert getattr(function, "allowed_permissions", None), f"{label}: no permission"
            assert (model, name) in rows, f"{label}: no row in the permission matrix"
