"""Admin for sources: connection URL, test connection, discover and register tables."""

from __future__ import annotations

from django.contrib import admin

from datasets.models import Source


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "url", "statement_timeout"]
