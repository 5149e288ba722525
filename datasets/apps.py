from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    """Sources, datasets, columns, ingestion, the query engine and the dataset API."""

    name = "datasets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from datasets import signals  # noqa: F401
