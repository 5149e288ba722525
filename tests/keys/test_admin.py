"""The admin flows through the admin's own pages: create a key and see it once, revoke, rotate."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from keys.models import ApiKey, KeyRowFilter
from keys.usage import usage_flush
from tests.keys.conftest import bearer, error_of

pytestmark = pytest.mark.django_db

RAW_IN_PAGE = re.compile(r"gw_[A-Za-z0-9]{12}_[A-Za-z0-9]{40}")


@pytest.fixture
def admin_client(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _add_form(orders, **fields) -> dict:
    data = {
        "name": "Sales GPT",
        "owner": "ana@example.com",
        "datasets": [orders.pk],
        "rate": "30/m",
        "quota_per_day": "1000",
        "expires_at_0": "",
        "expires_at_1": "",
        "row_filters-TOTAL_FORMS": "1",
        "row_filters-INITIAL_FORMS": "0",
        "row_filters-MIN_NUM_FORMS": "0",
        "row_filters-MAX_NUM_FORMS": "1000",
        "row_filters-0-dataset": orders.pk,
        "row_filters-0-column": "region",
        "row_filters-0-value": "EU",
    }
    data.update(fields)
    return data


def _create(admin_client, orders, **fields) -> tuple[ApiKey, str, str]:
    response = admin_client.post("/admin/keys/apikey/add/", _add_form(orders, **fields))
    assert response.status_code == 200, response.content
    page = response.content.decode()
    found = RAW_IN_PAGE.findall(page)
    assert found, page
    return ApiKey.objects.get(), found[0], page


def test_created_key_is_shown_once_then_never_again(admin_client, orders):
    key, raw, page = _create(admin_client, orders)
    assert "shown this once" in page and 'id="gateway-copy-key"' in page
    assert "no-store" in response_header_no_store(admin_client, orders)
    assert raw.startswith(f"gw_{key.key_id}_")
    assert key.name == "Sales GPT" and key.rate == "30/m" and key.quota_per_day == 1000
    assert list(key.datasets.values_list("slug", flat=True)) == ["orders"]
    assert KeyRowFilter.objects.get().value == "EU"
    for url in (
        "/admin/keys/apikey/",
        f"/admin/keys/apikey/{key.pk}/change/",
        f"/admin/keys/apikey/{key.pk}/rotate/",
        f"/admin/keys/apikey/{key.pk}/revoke/",
    ):
        other = admin_client.get(url)
        assert other.status_code == 200
        assert raw not in other.content.decode()
        assert raw.split("_")[2] not in other.content.decode()
    # The key works, with the scope and row filter set in the form.
    rows = bearer(raw).get("/api/v1/datasets/orders/rows/").json()["results"]
    assert {row["region"] for row in rows} == {"EU"}


def response_header_no_store(admin_client, orders) -> str:
    form = _add_form(orders, name="second")
    form["row_filters-TOTAL_FORMS"] = "0"
    return admin_client.post("/admin/keys/apikey/add/", form)["Cache-Control"]


def test_add_form_refuses_a_bad_rate_and_an_unknown_row_filter_column(admin_client, orders):
    response = admin_client.post(
        "/admin/keys/apikey/add/",
        _add_form(orders, rate="lots", **{"row_filters-0-column": "area"}),
    )
    page = response.content.decode()
    assert "is not a rate" in page
    assert "orders has no column &#x27;area&#x27;" in page
    assert ApiKey.objects.count() == 0
    assert not RAW_IN_PAGE.search(page)


def test_revoke_through_the_admin(admin_client, orders):
    key, raw, _ = _create(admin_client, orders)
    assert bearer(raw).get("/api/v1/datasets/").status_code == 200
    confirm = admin_client.get(f"/admin/keys/apikey/{key.pk}/revoke/")
    assert "cannot be undone" in confirm.content.decode()
    response = admin_client.post(f"/admin/keys/apikey/{key.pk}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked and key.revoked_at is not None
    error_of(bearer(raw).get("/api/v1/datasets/"), 401, "unauthorized")
    page = admin_client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()
    assert "revoked" in page and f"/admin/keys/apikey/{key.pk}/rotate/" not in page


def test_revoke_action_on_the_list(admin_client, orders):
    key, raw, _ = _create(admin_client, orders)
    response = admin_client.post(
        "/admin/keys/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]}
    )
    assert response.status_code == 302
    error_of(bearer(raw).get("/api/v1/datasets/"), 401, "unauthorized")


def test_rotate_through_the_admin_shows_the_new_key_once(admin_client, orders):
    key, old, _ = _create(admin_client, orders)
    response = admin_client.post(f"/admin/keys/apikey/{key.pk}/rotate/")
    assert response.status_code == 200
    page = response.content.decode()
    (new,) = set(RAW_IN_PAGE.findall(page))
    assert new != old and new.startswith(f"gw_{key.key_id}_")
    assert "the previous key no longer works" in page
    error_of(bearer(old).get("/api/v1/datasets/"), 401, "unauthorized")
    assert bearer(new).get("/api/v1/datasets/orders/").status_code == 200
    assert new not in admin_client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()


def test_key_page_shows_usage_chart_and_connect_link(admin_client, orders):
    key, raw, _ = _create(admin_client, orders)
    client = bearer(raw)
    client.get("/api/v1/datasets/orders/rows/")
    client.get("/api/v1/datasets/orders/rows/999/")
    page = admin_client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()
    assert "<strong>2</strong> requests in total" in page
    assert "<strong>1</strong> errors" in page
    assert page.count("<rect ") >= 30 and "<svg" in page
    assert f'href="/admin/connect/?key={key.key_id}"' in page
    # Nothing of the chart comes from another host.
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_usage_per_dataset_pages(admin_client, orders, secrets_ds):
    key, raw, _ = _create(admin_client, orders)
    bearer(raw).get("/api/v1/datasets/orders/rows/")
    bearer(raw).get("/api/v1/datasets/secrets/rows/")
    usage_flush()
    overview = admin_client.get("/admin/keys/usagerecord/datasets/").content.decode()
    assert "/admin/keys/usagerecord/datasets/orders/" in overview
    assert "/admin/keys/usagerecord/datasets/secrets/" in overview
    page = admin_client.get("/admin/keys/usagerecord/datasets/orders/").content.decode()
    assert "<strong>1</strong> requests in total" in page and "<svg" in page
    assert key.name in page
    records = admin_client.get("/admin/keys/usagerecord/")
    assert records.status_code == 200 and "Usage per dataset" in records.content.decode()


def test_key_pages_need_staff(orders, issue):
    issue(all_datasets=True)
    key = ApiKey.objects.get()
    response = Client().post(f"/admin/keys/apikey/{key.pk}/rotate/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert ApiKey.objects.get().secret_hash == key.secret_hash


def _staff_with(django_user_model, *codenames: str) -> Client:
    """A staff user with exactly these permissions."""
    from django.contrib.auth.models import Permission

    username = "staff-" + "-".join(codenames)
    user = django_user_model.objects.create(username=username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_add_form_refuses_a_key_without_datasets(admin_client, orders):
    form = _add_form(orders, datasets=[])
    form["row_filters-TOTAL_FORMS"] = "0"
    response = admin_client.post("/admin/keys/apikey/add/", form)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Choose at least one dataset, or tick &quot;all datasets&quot;" in page
    assert ApiKey.objects.count() == 0
    assert not RAW_IN_PAGE.search(page)
    # "All datasets" alone is a scope.
    form["all_datasets"] = "on"
    assert RAW_IN_PAGE.search(admin_client.post("/admin/keys/apikey/add/", form).content.decode())


def test_change_form_refuses_emptying_the_scope(admin_client, orders):
    key, raw, _ = _create(admin_client, orders)
    form = _add_form(orders, datasets=[])
    form.update({"row_filters-TOTAL_FORMS": "0", "row_filters-INITIAL_FORMS": "0"})
    response = admin_client.post(f"/admin/keys/apikey/{key.pk}/change/", form)
    assert response.status_code == 200
    assert "Choose at least one dataset" in response.content.decode()
    assert list(key.datasets.values_list("slug", flat=True)) == ["orders"]
    assert bearer(raw).get("/api/v1/datasets/orders/").status_code == 200


def test_view_only_staff_cannot_revoke_keys(django_user_model, orders, issue):
    raw = issue(datasets=["orders"])
    key = ApiKey.objects.get()
    viewer = _staff_with(django_user_model, "view_apikey")
    assert viewer.get("/admin/keys/apikey/").status_code == 200
    assert "revoke_selected" not in viewer.get("/admin/keys/apikey/").content.decode()
    viewer.post("/admin/keys/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]})
    assert viewer.post(f"/admin/keys/apikey/{key.pk}/revoke/").status_code == 403
    assert viewer.get(f"/admin/keys/apikey/{key.pk}/revoke/").status_code == 403
    assert not ApiKey.objects.get().revoked
    assert bearer(raw).get("/api/v1/datasets/orders/").status_code == 200


def test_rotating_needs_the_permission_to_issue_keys(django_user_model, orders, issue):
    issue(datasets=["orders"])
    key = ApiKey.objects.get()
    editor = _staff_with(django_user_model, "view_apikey", "change_apikey")
    assert editor.post(f"/admin/keys/apikey/{key.pk}/rotate/").status_code == 403
    assert ApiKey.objects.get().secret_hash == key.secret_hash
    issuer = _staff_with(django_user_model, "view_apikey", "change_apikey", "add_apikey")
    response = issuer.post(f"/admin/keys/apikey/{key.pk}/rotate/")
    assert response.status_code == 200 and RAW_IN_PAGE.search(response.content.decode())
    assert ApiKey.objects.get().secret_hash != key.secret_hash


def test_the_key_page_offers_only_the_buttons_the_user_may_press(django_user_model, orders, issue):
    issue(datasets=["orders"])
    key = ApiKey.objects.get()
    page = f"/admin/keys/apikey/{key.pk}/change/"
    viewer = _staff_with(django_user_model, "view_apikey").get(page).content.decode()
    assert "/revoke/" not in viewer and "/rotate/" not in viewer
    editor = _staff_with(django_user_model, "view_apikey", "change_apikey").get(page)
    assert "/revoke/" in editor.content.decode() and "/rotate/" not in editor.content.decode()
