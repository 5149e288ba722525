"""Admin for sources, datasets and columns."""

from __future__ import annotations

from django.contrib import admin

from datasets import admin_sources  # noqa: F401  (registers the Source admin)
from datasets.models import Column, Dataset, PrivacyPolicy


class ColumnInline(admin.TabularInline):
    model = Column
    extra = 0
    fields = [
        "position",
        "physical_name",
        "name",
        "type",
        "description",
        "exposed",
        "filterable",
        "sortable",
        "searchable",
        "pii",
    ]
    readonly_fields = ["physical_name"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "source", "table", "row_count", "enabled"]
    inlines = [ColumnInline]


@admin.register(PrivacyPolicy)
class PrivacyPolicyAdmin(admin.ModelAdmin):
    pass
