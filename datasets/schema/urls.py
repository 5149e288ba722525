"""URLs of the OpenAPI documents, their pages, the privacy policy and the Connect page."""

from __future__ import annotations

from django.urls import path

from datasets.schema import connect, views

urlpatterns = [
    path("openapi.json", views.openapi_json, name="openapi-json"),
    path("openapi.yaml", views.openapi_yaml, name="openapi-yaml"),
    path("swagger/", views.swagger, name="swagger"),
    # Guides tell GPT builders to import https://host/swagger/ or this file name.
    path("swagger/open_api.json", views.openapi_json, name="swagger-openapi-json"),
    path("redoc/", views.redoc, name="redoc"),
    path("privacy/", views.privacy, name="privacy"),
    # Before admin/ in the root URLconf, so the admin's catch-all does not take it.
    path("admin/connect/", connect.connect, name="admin-connect"),
]
