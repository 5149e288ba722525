from django.apps import AppConfig


class AccessConfig(AppConfig):
    """The doors to the datasets (the MCP endpoint today) over one query service."""

    name = "access"
    verbose_name = "Access"
