"""URLs of the dataset API under /api/v1/: each named for the operation usage records."""

from django.urls import path

from access import api

app_name = "api"
urlpatterns = [
    path("datasets/", api.DatasetListView.as_view(), name="list_datasets"),
    path("datasets/<str:slug>/", api.DatasetDetailView.as_view(), name="describe_dataset"),
    path("datasets/<str:slug>/rows/", api.RowListView.as_view(), name="rows"),
    path("datasets/<str:slug>/rows/<str:pk>/", api.RowDetailView.as_view(), name="row"),
    path("datasets/<str:slug>/aggregate/", api.AggregateView.as_view(), name="aggregate"),
]
