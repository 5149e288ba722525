"""Admin for sources, datasets and columns."""

from __future__ import annotations

import logging
import os
import re
from pathlib import PurePath
from typing import Any

import sqlalchemy as sa
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten, label_for_field
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from datasets import admin_sources  # noqa: F401  (registers the Source admin)
from datasets.engine.connections import connect, duckdb_files
from datasets.engine.errors import SourceUnavailable
from datasets.ingest import FORMATS, IngestError, file_format, quote
from datasets.measures import unit_suggestion
from datasets.models import Column, Dataset, DatasetImport, PrivacyPolicy
from datasets.naming import snake_case
from datasets.selectors import build_spec, source_url
from datasets.services import (
    DatasetImportError,
    check_upload_size,
    dataset_import_expire,
    dataset_import_start,
    upload_max_bytes,
)
from datasets.sources import SourceError, dataset_time_zone_check
from datasets.version_cache import local_version

logger = logging.getLogger("gateway")

PREVIEW_ROWS = 20
ACCEPT = ",".join(sorted(FORMATS))
FILE_HELP = (
    "CSV/TSV (any delimiter, UTF-8), XLSX (first sheet), JSON (array of objects), NDJSON or "
    "Parquet. Column names, types and the primary key are inferred; you can edit them afterwards."
)


SLUG_PATTERN = "[a-z][a-z0-9_]{0,39}"
SLUG_RULE = "Lower-case letters, digits and _, starting with a letter (at most 40)."


def slug_proposal(filename: str) -> str:
    """A free slug made from a file name: 'seattle-weather.csv' -> 'seattle_weather'."""
    stem = PurePath(filename).name.split(".")[0] if filename else ""
    base = snake_case(stem)[:40].strip("_") if stem else "dataset"
    base = base if re.fullmatch(SLUG_PATTERN, base) else "dataset"
    taken = set(Dataset.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, number = base, 2
    while slug in taken:
        suffix = f"_{number}"
        slug = f"{base[: 40 - len(suffix)]}{suffix}"
        number += 1
    return slug


class UploadFileField(forms.FileField):
    """A file field that refuses, with the limit, a file over GATEWAY_UPLOAD_MAX_MB."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", FILE_HELP)
        super().__init__(**kwargs)
        self.widget.attrs.update({"accept": ACCEPT, "data-max-bytes": str(upload_max_bytes())})

    def clean(self, data: Any, initial: Any = None) -> Any:
        upload = super().clean(data, initial)
        if upload:
            try:
                check_upload_size(upload.size)
            except DatasetImportError as error:
                raise forms.ValidationError(str(error)) from None
        return upload


def start_import(
    form: forms.BaseForm, upload: UploadedFile, **arguments: Any
) -> DatasetImport | None:
    """Start importing an upload in the background; a refusal becomes an error on the file field.

    Only what can be checked at once is checked here (file type, size, slug, a running import);
    what the file contains is checked by the import, whose page shows the outcome.
    """
    try:
        file_format(upload.name or "")
    except IngestError as error:
        form.add_error("file", str(error))
        return None
    try:
        return dataset_import_start(upload=upload, **arguments)
    except DatasetImportError as error:
        form.add_error("file", str(error))
    except Exception:  # never a traceback in the admin: say what failed, log the rest
        logger.exception("Upload of %s could not be stored", upload.name)
        form.add_error("file", "The upload could not be stored for importing: see the server log.")
    return None


def import_url(record: DatasetImport) -> str:
    """The page that shows an import's progress, then its outcome."""
    return reverse("admin:datasets_dataset_import", args=[record.pk])


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
            "slug": "URL name, e.g. sales: lower-case letters, digits and _, starting with a "
            "letter. Default: from the file name.",
            "title": "Default: from the slug.",
        }

    # Set per request by DatasetAdmin.get_form: who uploads the file.
    user: AbstractBaseUser | AnonymousUser | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        # The browser checks the pattern before sending: a wrong slug never costs the chosen file.
        self.fields["slug"].widget.attrs.update(
            {"pattern": SLUG_PATTERN, "title": SLUG_RULE, "data-slug-from": "id_file"}
        )
        self.fields["title"].required = False
        self.started: DatasetImport | None = None

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"].strip()
        if slug and Dataset.objects.filter(slug=slug).exists():
            raise forms.ValidationError(
                "A dataset with this slug already exists: open it and use 'Replace file'."
            )
        return slug

    def clean_title(self) -> str:
        return self.cleaned_data.get("title", "").strip()

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        upload = cleaned.get("file")
        if "slug" in cleaned and not cleaned["slug"] and upload is not None:
            cleaned["slug"] = slug_proposal(upload.name or "")
        if not cleaned.get("title"):
            cleaned["title"] = (cleaned.get("slug") or "").replace("_", " ").capitalize()
        return cleaned

    def _propose_slug(self) -> None:
        """A rejected slug comes back replaced by one proposed from the file name, and says so."""
        upload = self.cleaned_data.get("file")
        typed = self.data.get(self.add_prefix("slug"), "")
        if upload is None and not typed:
            return
        proposal = slug_proposal(upload.name if upload is not None else typed)
        if proposal == typed:
            return
        self.errors["slug"].append(f"Proposed instead: {proposal} (filled in below).")
        self.data = {**self.data, self.add_prefix("slug"): proposal}

    def _post_clean(self) -> None:
        # Start the import only once the model's own validation (slug pattern, lengths) has
        # passed: the import writes the dataset itself, so this form never saves an instance.
        super()._post_clean()  # type: ignore[misc]  # the stubs leave out BaseForm._post_clean
        if "slug" in self.errors:
            self._propose_slug()
        if not self.errors:
            self.started = start_import(
                self,
                self.cleaned_data["file"],
                slug=self.cleaned_data["slug"],
                title=self.cleaned_data["title"],
                description=self.cleaned_data.get("description") or "",
                primary_key=self.cleaned_data.get("primary_key_column") or None,
                user=self.user,
            )


class DatasetChangeForm(forms.ModelForm):
    """A dataset's page: its time zone must be one its source can count dates in."""

    class Meta:
        model = Dataset
        fields = ["time_zone", "label_column"]  # the admin adds the fieldsets' fields

    def clean_label_column(self) -> str:
        name = self.cleaned_data["label_column"].strip()
        if name and name != self.instance.label_column:
            columns = self.instance.columns.exclude(name=self.instance.primary_key)
            column = columns.filter(name=name).first()
            if column is None:
                choices = ", ".join(columns.order_by("position").values_list("name", flat=True))
                raise forms.ValidationError(
                    f"{self.instance.slug} has no column '{name[:40]}' other than its key. "
                    f"Its columns: {choices[:400]}."
                )
            if not column.exposed or column.pii != Column.Pii.NONE:
                raise forms.ValidationError(
                    f"{name} is hidden, masked or hashed: its values would be shown as labels."
                )
        return name

    def clean_time_zone(self) -> str:
        zone = self.cleaned_data["time_zone"]
        if zone != self.instance.time_zone:
            try:
                dataset_time_zone_check(dataset=self.instance, zone=zone)
            except SourceError as error:
                raise forms.ValidationError(error.message) from None
        return zone


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

    def __init__(
        self,
        *args: Any,
        dataset: Dataset,
        user: AbstractBaseUser | AnonymousUser | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.dataset = dataset
        self.user = user
        self.started: DatasetImport | None = None

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if not self.errors:
            self.started = start_import(
                self,
                cleaned["file"],
                slug=self.dataset.slug,
                primary_key=cleaned.get("primary_key_column") or None,
                replace=True,
                user=self.user,
            )
        return cleaned


def _help_of(names: list[str]) -> str:
    """The help texts of the model fields of one cell of the columns table, for its header."""
    texts = []
    for name in names:
        try:
            field = Column._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        text = str(field.help_text) if isinstance(field, models.Field) else ""
        if text:
            texts.append(text)
    return " ".join(texts)


class ColumnInline(admin.TabularInline):
    """The columns of a dataset, one compact row each (the page fits a 1280 px window)."""

    model = Column
    fk_name = "dataset"  # the other one is `references`
    template = "admin/datasets/dataset/columns_inline.html"
    extra = 0
    max_num = 0  # columns come from the file or the table, not from the admin
    can_delete = False
    fields = [
        "physical",
        "name",
        "type",
        "description",
        "unit",
        "identifies",
        "references",
        "exposed",
        "filterable",
        "sortable",
        "searchable",
        "pii",
        "aggregation",
        "statistics",
    ]
    readonly_fields = ["physical", "statistics"]
    # Fields that share a cell of the columns table: (header, kind, fields). A field of `fields`
    # not named here gets a cell of its own.
    cells = [
        ("column and API name", "column", ["physical", "name"]),
        ("type", "type", ["type"]),
        (
            "description, unit, identity and link",
            "description",
            ["description", "unit", "identifies", "references"],
        ),
        ("flags", "flags", ["exposed", "filterable", "sortable", "searchable"]),
        ("PII and aggregation", "pii", ["pii", "aggregation"]),
        ("values", "values", ["statistics"]),
    ]

    def get_formset(self, request: HttpRequest, obj: Dataset | None = None, **kwargs: Any):
        formset = super().get_formset(request, obj, **kwargs)
        form = formset.form

        class SuggestingForm(form):  # type: ignore[misc, valid-type]
            """A column's unit field offers the unit its name states, for the admin to confirm."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                column = self.instance
                field = self.fields.get("unit")
                references = self.fields.get("references")
                if references is not None:
                    # A reference names a row by key: only a dataset with a primary key has them.
                    references.queryset = Dataset.objects.exclude(primary_key="").order_by("slug")
                    for name in ("add", "change", "delete", "view"):
                        setattr(references.widget, f"can_{name}_related", False)
                suggested = unit_suggestion(column.name, column.type) if column.pk else ""
                if field is not None and suggested and not column.unit:
                    field.widget.attrs.update(
                        placeholder=f"{suggested}?",
                        title=f"Suggested from the column's name: {suggested}. Type it, or use "
                        "the action “Use the units the column names suggest”, to confirm.",
                    )

        formset.form = SuggestingForm
        return formset

    def get_fieldsets(self, request: HttpRequest, obj: Dataset | None = None):
        fields = flatten(self.get_fields(request, obj))
        lines, used = [], set()
        self.headers = []
        for title, kind, names in self.cells:
            line = [name for name in names if name in fields]
            if line:
                lines.append(line)
                used.update(line)
                self.headers.append(
                    {"name": kind, "title": title, "kind": kind, "help": _help_of(line)}
                )
        for name in fields:
            if name not in used:
                lines.append([name])
                label, attr = label_for_field(name, Column, self, return_attr=True)
                field = Column._meta.get_field(name) if attr is None else None
                help_text = str(field.help_text) if isinstance(field, models.Field) else ""
                self.headers.append({"name": name, "title": label, "kind": "", "help": help_text})
        return [(None, {"fields": lines})]

    @admin.display(description="physical name")
    def physical(self, column: Column) -> str:
        """The column's name in the file or table, above its API name."""
        return column.physical_name

    @admin.display(description="values")
    def statistics(self, column: Column) -> str:
        if column.enum:
            shown = ", ".join(str(value) for value in column.enum[:10])
            more = f" … ({len(column.enum)} values)" if len(column.enum) > 10 else ""
            values = shown + more
        elif column.min_value is not None or column.max_value is not None:
            values = f"{column.min_value} … {column.max_value}"
        else:
            values = "-"
        # One line of values (all of them in its tooltip), the counts on a second line.
        full = ", ".join(str(value) for value in column.enum) if column.enum else values
        # A range may wrap between its ends; a list of values is cut to one line.
        kind = "gateway-values" if column.enum else "gateway-range"
        if not column.enum and values != "-":
            # Each end on one line: a date range breaks at its " … ", never inside a date.
            values = format_html(
                "<span>{}</span> … <span>{}</span>", column.min_value, column.max_value
            )
        shown = format_html('<span class="{}" title="{}">{}</span>', kind, full, values)
        if column.distinct_count is None:
            return shown
        counts = f"{column.distinct_count} distinct, {column.null_count} empty"
        return format_html(
            '{}<span class="help">{}{}</span>', shown, counts, ", unique" if column.unique else ""
        )


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "origin", "row_count", "version", "enabled"]
    list_filter = ["enabled", "source"]
    search_fields = ["slug", "title", "description"]
    actions = ["confirm_suggested_units"]

    @admin.action(description="Use the units the column names suggest", permissions=["change"])
    def confirm_suggested_units(self, request: HttpRequest, queryset) -> None:
        """Set each column without a unit to the one its name states (flipper_length_mm: mm)."""
        changed = []
        for column in Column.objects.filter(dataset__in=queryset, unit=""):
            column.unit = unit_suggestion(column.name, column.type)
            if column.unit:
                changed.append(column)
        Column.objects.bulk_update(changed, ["unit"])
        names = ", ".join(f"{column.name} ({column.unit})" for column in changed[:20])
        self.message_user(
            request,
            f"Units set on {len(changed)} columns: {names}." if changed else "No unit to suggest.",
        )

    def get_form(
        self, request: HttpRequest, obj: Dataset | None = None, change: bool = False, **kwargs: Any
    ):
        kwargs["form"] = DatasetUploadForm if obj is None else DatasetChangeForm
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and issubclass(form, DatasetUploadForm):
            form.user = request.user  # a class made for this request by modelform_factory
        return form

    def get_fieldsets(self, request: HttpRequest, obj: Dataset | None = None):
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
            (
                "Data",
                {"fields": [*where, "primary_key", "row_count", "time_zone", "label_column"]},
            ),
            ("Pages", {"fields": ["default_ordering", "default_page_size", "max_page_size"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Dataset | None = None) -> list[str]:
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

    def get_inlines(self, request: HttpRequest, obj: Dataset | None):
        return [ColumnInline] if obj is not None else []

    @admin.display(description="source or file")
    def origin(self, dataset: Dataset) -> str:
        if dataset.is_upload:
            return dataset.original_filename or "(file)"
        return f"{dataset.source} · {dataset.table}"

    # The add form starts the import in its clean(): the import writes the dataset itself, in the
    # background, and the admin follows it on the import's page.
    def save_form(self, request: HttpRequest, form: forms.ModelForm, change: bool) -> Dataset:
        started = getattr(form, "started", None)
        if started is not None:
            form.instance.started_import = started
            return form.instance
        return super().save_form(request, form, change)

    def save_model(
        self, request: HttpRequest, obj: Dataset, form: forms.ModelForm, change: bool
    ) -> None:
        if getattr(form, "started", None) is not None:
            return
        super().save_model(request, obj, form, change)

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm, formsets: list[Any], change: bool
    ) -> None:
        if getattr(form, "started", None) is not None:
            return
        super().save_related(request, form, formsets, change)

    def log_addition(self, request: HttpRequest, obj: Dataset, message: Any):
        if obj.pk is None:
            return None  # not created yet: the import writes the history entry when it is done
        return super().log_addition(request, obj, message)

    def save_formset(
        self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool
    ) -> None:
        columns = formset.save(commit=False)
        for column in columns:
            if column.pii != Column.Pii.NONE:
                # A protected column's values must not leak through its published statistics.
                column.enum = column.min_value = column.max_value = None
            column.save()
        formset.save_m2m()

    def response_add(
        self, request: HttpRequest, obj: Dataset, post_url_continue: str | None = None
    ) -> HttpResponse:
        started = getattr(obj, "started_import", None)
        if started is not None:
            return HttpResponseRedirect(import_url(started))
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self) -> list[URLPattern]:
        urls = [
            path(
                "<path:object_id>/replace/",
                self.admin_site.admin_view(self.replace_view),
                name="datasets_dataset_replace",
            ),
            path(
                "import/<int:import_id>/",
                self.admin_site.admin_view(self.import_view),
                name="datasets_dataset_import",
            ),
            path(
                "import/<int:import_id>/status/",
                self.admin_site.admin_view(self.import_status_view),
                name="datasets_dataset_import_status",
            ),
        ]
        return urls + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        dataset = self.get_object(request, object_id)
        # The preview reads the data: only for those who may see the dataset (the admin
        # refuses everyone else below, before rendering).
        if dataset is not None and self.has_view_or_change_permission(request, dataset):
            extra_context["preview"] = dataset_preview(dataset)
            extra_context["latest_import"] = latest_import(dataset)
            if dataset.is_upload and self.has_change_permission(request, dataset):
                extra_context["replace_url"] = reverse(
                    "admin:datasets_dataset_replace", args=[dataset.pk]
                )
        extra_context["upload_max_mb"] = settings.GATEWAY_UPLOAD_MAX_MB
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {}, upload_max_mb=settings.GATEWAY_UPLOAD_MAX_MB)
        return super().add_view(request, form_url, extra_context)

    def replace_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Upload a new version of a dataset's file; the previous one serves until it is done."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        dataset = self.get_object(request, object_id)
        if dataset is None:
            raise Http404("No such dataset.")
        if not self.has_change_permission(request, dataset):
            raise PermissionDenied
        if not dataset.is_upload:
            messages.error(request, "This dataset is a table of a source: it has no file.")
            return HttpResponseRedirect(reverse("admin:datasets_dataset_change", args=[dataset.pk]))
        if request.method == "POST":
            form = DatasetReplaceForm(
                request.POST, request.FILES, dataset=dataset, user=request.user
            )
            if form.is_valid() and form.started is not None:
                # The history entry is written when the import has replaced the file.
                return HttpResponseRedirect(import_url(form.started))
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

    def _import_record(self, request: HttpRequest, import_id: int) -> DatasetImport:
        if not self.has_view_permission(request):
            raise PermissionDenied
        dataset_import_expire()  # a record whose process ended says so, on the next look
        record = DatasetImport.objects.select_related("dataset").filter(pk=import_id).first()
        if record is None:
            raise Http404("No such import.")
        return record

    def import_view(self, request: HttpRequest, import_id: int) -> HttpResponse:
        """An import's progress (the page refreshes itself), then its dataset or why it failed."""
        record = self._import_record(request, import_id)
        dataset = record.dataset
        if record.state == DatasetImport.State.DONE and dataset is not None:
            if record.replace:
                messages.success(
                    request,
                    f"'{dataset.slug}' now serves version {dataset.version} "
                    f"({dataset.original_filename}, {dataset.row_count} rows).",
                )
            else:
                messages.success(
                    request,
                    f"Imported {dataset.row_count} rows into '{dataset.slug}': check the column "
                    "types, descriptions and PII settings below.",
                )
            return HttpResponseRedirect(reverse("admin:datasets_dataset_change", args=[dataset.pk]))
        if record.replace and dataset is not None:
            again_url = reverse("admin:datasets_dataset_replace", args=[dataset.pk])
        else:
            again_url = reverse("admin:datasets_dataset_add")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Importing {record.filename} into {record.slug}",
            "record": record,
            "dataset": dataset,
            "status_url": reverse("admin:datasets_dataset_import_status", args=[record.pk]),
            "again_url": again_url,
            "change_url": (
                reverse("admin:datasets_dataset_change", args=[dataset.pk]) if dataset else None
            ),
        }
        return TemplateResponse(request, "admin/datasets/dataset/import.html", context)

    def import_status_view(self, request: HttpRequest, import_id: int) -> JsonResponse:
        """An import's state and progress, polled by its page."""
        record = self._import_record(request, import_id)
        return JsonResponse(
            {
                "state": record.state,
                "active": record.active,
                "progress": round(record.progress),
                "message": record.message,
            }
        )


def latest_import(dataset: Dataset) -> dict | None:
    """The dataset's import to show on its page: one in progress, or the last one if it failed."""
    if not dataset.is_upload:
        return None
    dataset_import_expire()
    record = dataset.imports.first()
    if record is None or record.state == DatasetImport.State.DONE:
        return None
    return {
        "record": record,
        "url": import_url(record),
        "status_url": reverse("admin:datasets_dataset_import_status", args=[record.pk]),
    }


def dataset_preview(dataset: Dataset) -> dict:
    """The first rows of a dataset for its admin page: {"columns", "rows"} or {"error"}."""
    columns = list(dataset.columns.order_by("position"))
    if not columns:
        return {"error": "No columns yet."}
    headers = [_preview_header(column) for column in columns]
    try:
        if dataset.is_upload:
            rows = _preview_file(dataset, columns)
        else:
            rows = _preview_source(dataset, columns)
    except Exception as error:  # a preview must never break the page that fixes the problem
        logger.warning("Preview of %s failed: %s", dataset.slug, error)
        return {"error": f"No preview: {error}"}
    return {
        "columns": headers,
        "rows": [[_shown(value) for value in row] for row in rows],
        "protected": any(column.pii != Column.Pii.NONE or not column.exposed for column in columns),
    }


# What the API does with a column's values, for the preview's label: the preview shows them as
# stored, which only an admin sees.
PREVIEW_PROTECTED: dict[str, str] = {
    Column.Pii.MASK: "admin only: the API masks these values",
    Column.Pii.HASH: "admin only: the API hashes these values",
    Column.Pii.HIDE: "admin only: the API hides these values",
}


def _preview_header(column: Column) -> str:
    """A preview column's header: its API name, and a label when the API does not show its values."""
    label = PREVIEW_PROTECTED.get(column.pii)
    if label is None and not column.exposed:
        label = "admin only: not exposed by the API"
    if label is None:
        return column.name
    return format_html('{}<small class="gateway-admin-only">{}</small>', column.name, label)


def _preview_file(dataset: Dataset, columns: list[Column]) -> list[tuple]:
    if not dataset.version:
        raise ValueError("no file has been imported yet")
    try:
        path = local_version(build_spec(dataset))  # fetched from the object store if need be
    except SourceUnavailable as error:
        raise ValueError(str(error)) from None
    if not os.path.isfile(path):
        raise ValueError(f"the file of version {dataset.version} is missing")
    select = ", ".join(quote(column.physical_name) for column in columns)
    table = quote(dataset.table or "data")
    # The engine's read-only connection for this file: a second connection to the same file
    # with another configuration is refused by DuckDB.
    with duckdb_files.reading(path) as cursor:
        return cursor.execute(f"SELECT {select} FROM {table} LIMIT {PREVIEW_ROWS}").fetchall()


def _preview_source(dataset: Dataset, columns: list[Column]) -> list[tuple]:
    source = dataset.source
    if source is None:
        raise ValueError("the dataset has no source")
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


def _shown(value: Any) -> str:
    if value is None:
        return "∅"
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


@admin.register(PrivacyPolicy)
class PrivacyPolicyAdmin(admin.ModelAdmin):
    pass
