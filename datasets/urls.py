"""URLs of the dataset API under /api/v1/."""

from django.urls import path

from datasets import api

urlpatterns = [
    path("datasets/", api.DatasetListView.as_view(), name="dataset-list"),
    path("datasets/<str:slug>/", api.DatasetDetailView.as_view(), name="dataset-detail"),
    path("datasets/<str:slug>/rows/", api.RowListView.as_view(), name="dataset-rows"),
    path("datasets/<str:slug>/rows/<str:pk>/", api.RowDetailView.as_view(), name="dataset-row"),
    path("datasets/<str:slug>/aggregate/", api.AggregateView.as_view(), name="dataset-aggregate"),
]
