"""Gateway's doors: the dataset API under /api/v1/ (each URL named for the operation usage
records), the OpenAPI documents and their pages, the privacy policy and the Connect page."""

from django.urls import path

from access import api, connect, schema

api_patterns = [
    path("datasets/", api.DatasetListView.as_view(), name="list_datasets"),
    path("datasets/<str:slug>/", api.DatasetDetailView.as_view(), name="describe_dataset"),
    path("datasets/<str:slug>/rows/", api.RowListView.as_view(), name="rows"),
    path("datasets/<str:slug>/rows/<str:pk>/", api.RowDetailView.as_view(), name="row"),
    path("datasets/<str:slug>/aggregate/", api.AggregateView.as_view(), name="aggregate"),
]

schema_patterns = [
    path("openapi.json", schema.openapi_json, name="openapi-json"),
    path("openapi.yaml", schema.openapi_yaml, name="openapi-yaml"),
    path("swagger/", schema.swagger, name="swagger"),
    # Guides tell GPT builders to import https://host/swagger/ or this file name.
    path("swagger/open_api.json", schema.openapi_json, name="swagger-openapi-json"),
    path("redoc/", schema.redoc, name="redoc"),
    path("privacy/", schema.privacy, name="privacy"),
    # Before admin/ in the root URLconf, so the admin's catch-all does not take it.
    path("admin/connect/", connect.connect, name="admin-connect"),
]
