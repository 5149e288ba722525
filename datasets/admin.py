"""Admin for sources, datasets and columns."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from datasets import admin_sources  # noqa: F401  (registers the Source admin)
from datasets.engine.connections import connect, duckdb_files
from datasets.ingest import FORMATS, quote
from datasets.models import Column, Dataset, PrivacyPolicy
from datasets.selectors import source_url
from datasets.services import (
    DatasetImportError,
    check_upload_size,
    dataset_import,
    upload_max_bytes,
)

logger = logging.getLogger("gateway")

PREVIEW_ROWS = 20
ACCEPT = ",".join(sorted(FORMATS))
FILE_HELP = (
    "CSV/TSV (any delimiter, UTF-8), XLSX (first sheet), JSON (array of objects), NDJSON or "
    "Parquet. Column names, types and the primary key are inferred; you can edit them afterwards."
)


@contextlib.contextmanager
def stored_upload(upload: UploadedFile) -> Iterator[Path]:
    """The upload as a file on disk (large uploads already are; small ones are kept in memory)."""
    temporary_path = getattr(upload, "temporary_file_path", None)
    if temporary_path is not None:
        yield Path(temporary_path())
        return
    suffix = Path(upload.name or "").suffix
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="gateway-upload-") as handle:
        upload.seek(0)
        shutil.copyfileobj(upload, handle)
        handle.flush()
        yield Path(handle.name)


class UploadFileField(forms.FileField):
    """A file field that refuses, with the limit, a file over GATEWAY_UPLOAD_MAX_MB."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", FILE_HELP)
        super().__init__(**kwargs)
        self.widget.attrs.update({"accept": ACCEPT, "data-max-bytes": str(upload_max_bytes())})

    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload:
            try:
                check_upload_size(upload.size)
            except DatasetImportError as error:
                raise forms.ValidationError(str(error)) from None
        return upload


def run_import(form: forms.Form, upload: UploadedFile, **arguments) -> Dataset | None:
    """Import an uploaded file; an import error becomes an error on the form's file field."""
    try:
        with stored_upload(upload) as stored:
            return dataset_import(path=stored, filename=upload.name, **arguments)
    except DatasetImportError as error:
        form.add_error("file", str(error))
    except Exception as error:  # never a traceback in the admin: say what failed, log the rest
        logger.exception("Import of %s failed", upload.name)
        form.add_error("file", f"The import failed: {error}")
    return None


class DatasetUploadForm(forms.ModelForm):
    """Add a dataset from an uploaded file (a dataset of a SQL source comes from its discover page)."""

    primary_key_column = forms.CharField(
        label="Primary key",
        max_length=200,
        required=False,
        help_text="Column with one value per row. Default: a unique integer column such as id, "
        "else a row_id column is added.",
    )
    file = UploadFileField()

    class Meta:
        model = Dataset
        fields = ["slug", "title", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "slug": "URL name, e.g. sales: lower-case letters, digits and _, starting with a letter.",
            "title": "Default: from the slug.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.imported: Dataset | None = None

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if Dataset.objects.filter(slug=slug).exists():
            raise forms.ValidationError(
                "A dataset with this slug already exists: open it and use 'Replace file'."
            )
        return slug

    def clean_title(self) -> str:
        title = self.cleaned_data.get("title", "").strip()
        slug = self.cleaned_data.get("slug") or ""
        return title or slug.replace("_", " ").capitalize()

    def _post_clean(self) -> None:
        # Import only once the model's own validation (slug pattern, lengths) has passed: the
        # service writes the dataset itself, so this form never saves an instance.
        super()._post_clean()
        if not self.errors:
            self.imported = run_import(
                self,
                self.cleaned_data["file"],
                slug=self.cleaned_data["slug"],
                title=self.cleaned_data["title"],
                description=self.cleaned_data.get("description") or "",
                primary_key=self.cleaned_data.get("primary_key_column") or None,
            )


class DatasetReplaceForm(forms.Form):
    """Upload a new version of a dataset's file."""

    file = UploadFileField(label="New file")
    primary_key_column = forms.CharField(
        label="Primary key",
        max_length=200,
        required=False,
        help_text="Default: the current key column if it is still unique, else a unique integer "
        "column, else a row_id column.",
    )

    def __init__(self, *args, dataset: Dataset, **kwargs):
        super().__init__(*args, **kwargs)
        self.dataset = dataset
        self.imported: Dataset | None = None

    def clean(self) -> dict:
        cleaned = super().clean()
        if not self.errors:
            self.imported = run_import(
                self,
                cleaned["file"],
                slug=self.dataset.slug,
                primary_key=cleaned.get("primary_key_column") or None,
                replace=True,
            )
        return cleaned


class ColumnInline(admin.TabularInline):
    model = Column
    extra = 0
    max_num = 0  # columns come from the file or the table, not from the admin
    can_delete = False
    fields = [
        "physical_name",
        "name",
        "type",
        "description",
        "exposed",
        "filterable",
        "sortable",
        "searchable",
        "pii",
        "statistics",
    ]
    readonly_fields = ["physical_name", "statistics"]

    @admin.display(description="values")
    def statistics(self, column: Column) -> str:
        if column.enum:
            shown = ", ".join(str(value) for value in column.enum[:10])
            more = f" … ({len(column.enum)} values)" if len(column.enum) > 10 else ""
            return shown + more
        if column.min_value is not None or column.max_value is not None:
            return f"{column.min_value} … {column.max_value}"
        return "-"


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "origin", "row_count", "version", "enabled"]
    list_filter = ["enabled", "source"]
    search_fields = ["slug", "title", "description"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = DatasetUploadForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ["slug", "title", "description", "primary_key_column", "file"]})
            ]
        where = (
            ["original_filename", "version"]
            if obj.is_upload
            else ["source", "schema_name", "table"]
        )
        return [
            (None, {"fields": ["slug", "title", "description", "enabled"]}),
            ("Data", {"fields": [*where, "primary_key", "row_count"]}),
            ("Pages", {"fields": ["default_ordering", "default_page_size", "max_page_size"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # The key is indexed in the file (or is the table's own): change it by replacing the file.
        return [
            "slug",
            "source",
            "schema_name",
            "table",
            "original_filename",
            "version",
            "primary_key",
            "row_count",
        ]

    def get_inlines(self, request, obj):
        return [ColumnInline] if obj is not None else []

    @admin.display(description="source or file")
    def origin(self, dataset: Dataset) -> str:
        if dataset.is_upload:
            return dataset.original_filename or "(file)"
        return f"{dataset.source} · {dataset.table}"

    # The add form imports the file in its clean(): the service has written the dataset already.
    def save_form(self, request, form, change):
        if getattr(form, "imported", None) is not None:
            return form.imported
        return super().save_form(request, form, change)

    def save_model(self, request, obj, form, change):
        if getattr(form, "imported", None) is not None:
            return
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        if getattr(form, "imported", None) is not None:
            return
        super().save_related(request, form, formsets, change)

    def save_formset(self, request, form, formset, change):
        columns = formset.save(commit=False)
        for column in columns:
            if column.pii != Column.Pii.NONE:
                # A protected column's values must not leak through its published statistics.
                column.enum = column.min_value = column.max_value = None
            column.save()
        formset.save_m2m()

    def response_add(self, request, obj, post_url_continue=None):
        messages.success(
            request,
            f"Imported {obj.row_count} rows into '{obj.slug}': check the column types, "
            "descriptions and PII settings below.",
        )
        return HttpResponseRedirect(reverse("admin:datasets_dataset_change", args=[obj.pk]))

    def get_urls(self):
        urls = [
            path(
                "<path:object_id>/replace/",
                self.admin_site.admin_view(self.replace_view),
                name="datasets_dataset_replace",
            ),
        ]
        return urls + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        dataset = self.get_object(request, object_id)
        if dataset is not None:
            extra_context["preview"] = dataset_preview(dataset)
            if dataset.is_upload:
                extra_context["replace_url"] = reverse(
                    "admin:datasets_dataset_replace", args=[dataset.pk]
                )
        extra_context["upload_max_mb"] = settings.GATEWAY_UPLOAD_MAX_MB
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        extra_context = dict(extra_context or {}, upload_max_mb=settings.GATEWAY_UPLOAD_MAX_MB)
        return super().add_view(request, form_url, extra_context)

    def replace_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Upload a new version of a dataset's file; the previous one serves until it is done."""
        dataset = get_object_or_404(Dataset, pk=object_id)
        if not self.has_change_permission(request, dataset):
            raise PermissionDenied
        if not dataset.is_upload:
            messages.error(request, "This dataset is a table of a source: it has no file.")
            return HttpResponseRedirect(reverse("admin:datasets_dataset_change", args=[dataset.pk]))
        if request.method == "POST":
            form = DatasetReplaceForm(request.POST, request.FILES, dataset=dataset)
            if form.is_valid() and form.imported is not None:
                imported = form.imported
                self.log_change(
                    request, imported, f"Replaced the file (version {imported.version})."
                )
                messages.success(
                    request,
                    f"'{imported.slug}' now serves version {imported.version} "
                    f"({imported.original_filename}, {imported.row_count} rows).",
                )
                return HttpResponseRedirect(
                    reverse("admin:datasets_dataset_change", args=[imported.pk])
                )
        else:
            form = DatasetReplaceForm(dataset=dataset)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Replace the file of {dataset.slug}",
            "dataset": dataset,
            "form": form,
            "upload_max_mb": settings.GATEWAY_UPLOAD_MAX_MB,
            "change_url": reverse("admin:datasets_dataset_change", args=[dataset.pk]),
        }
        return TemplateResponse(request, "admin/datasets/dataset/replace.html", context)


def dataset_preview(dataset: Dataset) -> dict:
    """The first rows of a dataset for its admin page: {"columns", "rows"} or {"error"}."""
    columns = list(dataset.columns.order_by("position"))
    if not columns:
        return {"error": "No columns yet."}
    headers = [format_html("{}<br><small>{}</small>", c.name, c.physical_name) for c in columns]
    try:
        if dataset.is_upload:
            rows = _preview_file(dataset, columns)
        else:
            rows = _preview_source(dataset, columns)
    except Exception as error:  # a preview must never break the page that fixes the problem
        logger.warning("Preview of %s failed: %s", dataset.slug, error)
        return {"error": f"No preview: {error}"}
    return {"columns": headers, "rows": [[_shown(value) for value in row] for row in rows]}


def _preview_file(dataset: Dataset, columns: list[Column]) -> list[tuple]:
    if not dataset.version:
        raise ValueError("no file has been imported yet")
    path = dataset.file_path()
    if not path.is_file():
        raise ValueError(f"the file of version {dataset.version} is missing")
    # The engine's read-only connection for this file: a second connection to the same file
    # with another configuration is refused by DuckDB.
    cursor = duckdb_files.cursor(str(path))
    select = ", ".join(quote(column.physical_name) for column in columns)
    table = quote(dataset.table or "data")
    return cursor.execute(f"SELECT {select} FROM {table} LIMIT {PREVIEW_ROWS}").fetchall()


def _preview_source(dataset: Dataset, columns: list[Column]) -> list[tuple]:
    source = dataset.source
    table = sa.table(
        dataset.table,
        *[sa.column(column.physical_name) for column in columns],
        schema=dataset.schema_name or None,
    )
    engine = connect(source_url(source), timeout=source.statement_timeout)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.select(table).limit(PREVIEW_ROWS))]
    finally:
        engine.dispose()


def _shown(value) -> str:
    if value is None:
        return "∅"
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


@admin.register(PrivacyPolicy)
class PrivacyPolicyAdmin(admin.ModelAdmin):
    pass
