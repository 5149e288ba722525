"""Admin for sources: connection URL, test connection, discover and register tables."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from datasets.models import Dataset, Source
from datasets.naming import snake_case
from datasets.sources import (
    DiscoveredTable,
    SourceError,
    SourceLocation,
    dataset_register,
    dataset_statistics_refresh,
    source_connection_check,
    source_discover,
    source_location_parse,
    source_test,
    url_without_password,
)

URL_HELP = (
    "postgresql://user:pass@host:5432/db, mysql://user:pass@host:3306/db or "
    "sqlite:////absolute/path/file.db. A password written here (user:pass@ or ?password=) is "
    "moved to the encrypted password and never shown again. Only the driver options listed in "
    "the sources guide are accepted (for example ?sslmode=require)."
)


class SourceForm(forms.ModelForm):
    """Source settings; the password is write-only and the connection is tested before saving."""

    password = forms.CharField(
        required=False,
        strip=False,
        # render_value=False: a stored or submitted password never goes back into the page.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to keep the stored password (or to put it in the URL).",
    )
    clear_password = forms.BooleanField(
        required=False, label="Remove the stored password", help_text="Connect without one."
    )

    class Meta:
        model = Source
        fields = ["name", "url", "password", "clear_password", "statement_timeout"]
        widgets = {"url": forms.TextInput(attrs={"size": 80})}
        labels = {"url": "Connection URL"}
        help_texts = {"url": URL_HELP}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.location: SourceLocation | None = None
        self._password_given = False
        if self.instance.pk and self.instance.url:
            # A URL stored with `?password=` (before such passwords were moved out) is never shown.
            self.initial["url"] = url_without_password(self.instance.url)
        if self.instance.pk is None:
            del self.fields["clear_password"]
            self.fields["password"].help_text = "Or put it in the URL."
            return
        # Beside the stored password's line: this field replaces it.
        self.fields["password"].label = "New password"
        if self.instance.password_encrypted:
            self.fields["password"].help_text = "A password is stored: leave blank to keep it."
        else:
            self.fields["password"].help_text = "No password is stored."

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            location = source_location_parse(url=url)
        except SourceError as error:
            raise forms.ValidationError(error.message) from None
        if location.password:
            self._password_given = True
            self._url_password = location.password
        return location.url

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        url = cleaned.get("url")
        timeout = cleaned.get("statement_timeout")
        if not url or not timeout or self.errors:
            return cleaned
        password = getattr(self, "_url_password", "") or cleaned.get("password", "")
        if password:
            self._password_given = True
        elif self.instance.pk and not cleaned.get("clear_password"):
            try:
                password = self.instance.password
            except ValueError as error:  # encrypted under another GATEWAY_SECRET_KEY
                raise forms.ValidationError(f"{error} Enter the password again.") from None
        try:
            self.location = source_location_parse(url=url, password=password)
            source_connection_check(location=self.location, timeout=timeout)
        except SourceError as error:
            again = (
                " Enter the password again: it is never shown back." if self._password_given else ""
            )
            raise forms.ValidationError(error.message + again) from None
        return cleaned

    def full_clean(self) -> None:
        super().full_clean()
        if self.is_bound and self.errors:
            # The form comes back with errors: never render a password typed in the URL field.
            name = self.add_prefix("url")
            self.data = {**self.data, name: url_without_password(self.data.get(name, ""))}

    def save(self, commit: bool = True) -> Source:
        source = super().save(commit=False)
        assert self.location is not None  # set by a successful clean()
        source.kind, source.url = self.location.kind, self.location.url
        source.password = self.location.password
        if commit:
            source.save()
        return source


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    """Sources: the connection is tested on save; tables are discovered and registered in bulk."""

    form = SourceForm
    list_display = ["name", "kind", "connection_url", "statement_timeout", "dataset_count"]
    search_fields = ["name"]
    readonly_fields = ["kind", "password_stored"]
    actions = ["test_connection", "refresh_statistics"]
    change_form_template = "admin/datasets/source/change_form.html"

    def get_fields(self, request: HttpRequest, obj: Source | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("name", "url", "password", "statement_timeout")
        return (
            "name",
            "kind",
            "url",
            "password_stored",
            "password",
            "clear_password",
            "statement_timeout",
        )

    @admin.display(description="connection URL", ordering="url")
    def connection_url(self, obj: Source) -> str:
        return url_without_password(obj.url)

    @admin.display(description="stored password")
    def password_stored(self, obj: Source) -> str:
        return "stored, encrypted" if obj.password_encrypted else "none"

    @admin.display(description="datasets")
    def dataset_count(self, obj: Source) -> int:
        return obj.datasets.count()

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/test-connection/",
                view(self.test_connection_view),
                name="datasets_source_test",
            ),
            path(
                "<path:object_id>/discover/",
                view(self.discover_view),
                name="datasets_source_discover",
            ),
            path(
                "<path:object_id>/refresh-statistics/",
                view(self.refresh_statistics_view),
                name="datasets_source_refresh",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        source = self.get_object(request, object_id)
        extra = {"source_datasets": list(source.datasets.all()) if source else []}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    # -- Actions on the list ---------------------------------------------------------------------

    # Adding or changing a source is Django's own add_source / change_source permission: only
    # superusers have it unless it is granted, and a connection test or a statistics refresh
    # needs it too, since each makes Gateway connect to the source.

    def has_refresh_statistics_permission(
        self, request: HttpRequest, obj: Source | None = None
    ) -> bool:
        """Refreshing statistics connects to the source and rewrites its datasets' statistics."""
        datasets = self.admin_site._registry.get(Dataset)
        return self.has_change_permission(request, obj) and (
            datasets is None or datasets.has_change_permission(request)
        )

    @admin.action(description="Test connection of the selected sources", permissions=["change"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for source in queryset:
            self._report_test(request, source)

    @admin.action(
        description="Refresh statistics of the selected sources' datasets",
        permissions=["refresh_statistics"],
    )
    def refresh_statistics(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for source in queryset:
            self._refresh(request, source)

    # -- Views -----------------------------------------------------------------------------------

    def test_connection_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        source = self._source(request, object_id)
        self._report_test(request, source)
        return HttpResponseRedirect(self._change_url(source))

    def refresh_statistics_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        source = self._source(request, object_id)
        if not self.has_refresh_statistics_permission(request, source):
            raise PermissionDenied
        if request.method == "POST":
            self._refresh(request, source)
        return HttpResponseRedirect(self._change_url(source))

    def discover_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        source = self._source(request, object_id)
        if not self.admin_site._registry[Dataset].has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            try:
                rows, failed = self._register_selected(request, source)
            except _BadDiscoverForm as error:
                messages.error(request, str(error))
                return HttpResponseRedirect(
                    reverse("admin:datasets_source_discover", args=[source.pk])
                )
            if not failed:
                return HttpResponseRedirect(self._change_url(source))
        else:
            try:
                found = source_discover(source=source)
            except SourceError as error:
                messages.error(request, error.message)
                return HttpResponseRedirect(self._change_url(source))
            rows = self._rows(source, found)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Discover tables and views of {source.name}",
            "opts": self.opts,
            "source": source,
            "rows": rows,
            "change_url": self._change_url(source),
        }
        return TemplateResponse(request, "admin/datasets/source/discover.html", context)

    # -- Helpers ---------------------------------------------------------------------------------

    def _source(self, request: HttpRequest, object_id: str) -> Source:
        source = get_object_or_404(Source, pk=object_id)
        if not self.has_change_permission(request, source):
            raise PermissionDenied
        return source

    def _change_url(self, source: Source) -> str:
        return reverse("admin:datasets_source_change", args=[source.pk])

    def _report_test(self, request: HttpRequest, source: Source) -> None:
        try:
            source_test(source=source)
        except SourceError as error:
            messages.error(request, f"Connection failed. {error.message}")
        else:
            messages.success(request, f"Connection to {source.name} works.")

    def _refresh(self, request: HttpRequest, source: Source) -> None:
        datasets = list(source.datasets.all())
        if not datasets:
            messages.warning(request, f"{source.name} has no datasets yet.")
        for dataset in datasets:
            try:
                dataset_statistics_refresh(dataset=dataset)
            except SourceError as error:
                messages.error(request, f"{dataset.slug}: {error.message}")
            else:
                messages.success(
                    request, f"Statistics of {dataset.slug} refreshed: {dataset.row_count} rows."
                )

    def _rows(self, source: Source, found: list[DiscoveredTable]) -> list[dict]:
        registered = {(d.schema_name, d.table): d for d in source.datasets.all()}
        taken = set(Dataset.objects.values_list("slug", flat=True))
        rows = []
        for index, table in enumerate(found):
            slug = _free_slug(table.name, taken)
            taken.add(slug)
            rows.append(
                {
                    "index": index,
                    "table": table.name,
                    # Passed on as is: dataset_register stores "" for the default schema.
                    "schema": table.schema,
                    "qualified_name": table.qualified_name,
                    "kind": table.kind,
                    "slug": slug,
                    "primary_key": "",
                    "checked": False,
                    "error": "",
                    "dataset": registered.get((table.schema, table.name))
                    or registered.get(("", table.name)),
                }
            )
        return rows

    def _register_selected(self, request: HttpRequest, source: Source) -> tuple[list[dict], int]:
        """Register every checked row; the rows (with errors) for a page shown again, and the failures."""
        selected = set(request.POST.getlist("register"))
        rows, failed, done = [], 0, 0
        count = _row_count(request.POST.get("rows", ""))
        for index in range(count):
            post = request.POST
            table, schema = post.get(f"table-{index}", ""), post.get(f"schema-{index}", "")
            row: dict[str, Any] = {
                "index": index,
                "table": table,
                "schema": schema,
                "qualified_name": post.get(f"name-{index}", table),
                "kind": post.get(f"kind-{index}", ""),
                "slug": post.get(f"slug-{index}", "").strip(),
                "primary_key": post.get(f"pk-{index}", "").strip(),
                "checked": str(index) in selected,
                "error": "",
                "dataset": None,
            }
            if row["checked"]:
                try:
                    dataset = dataset_register(
                        source=source,
                        table=table,
                        schema_name=schema,
                        slug=row["slug"],
                        primary_key=row["primary_key"] or None,
                    )
                except SourceError as error:
                    row["error"] = error.message
                    failed += 1
                else:
                    row["dataset"], row["checked"] = dataset, False
                    done += 1
                    url = reverse("admin:datasets_dataset_change", args=[dataset.pk])
                    messages.success(
                        request,
                        format_html(
                            'Registered <a href="{}">{}</a>: {} columns, primary key {}, {} rows.',
                            url,
                            dataset.slug,
                            dataset.columns.count(),
                            dataset.primary_key or "none",
                            dataset.row_count,
                        ),
                    )
            rows.append(row)
        if not selected:
            messages.warning(request, "Select the tables and views to register.")
            failed += 1
        elif failed:
            messages.error(request, f"{failed} could not be registered: see below.")
        return rows, failed


# More rows than any source lists on one page: a bound on the work one request may ask for.
DISCOVER_MAX_ROWS = 10_000


class _BadDiscoverForm(Exception):
    """The discover form came back altered: it is shown again, fresh, with this message."""


def _row_count(value: str) -> int:
    value = (value or "0").strip()
    if not re.fullmatch(r"[0-9]{1,6}", value) or int(value) > DISCOVER_MAX_ROWS:
        raise _BadDiscoverForm(
            f"The form was not sent as shown (rows={value[:20]!r}): select the tables again."
        )
    return int(value)


def _free_slug(table: str, taken: set[str]) -> str:
    base = snake_case(table)[:40].strip("_") or "dataset"
    slug, number = base, 2
    while slug in taken:
        suffix = f"_{number}"
        slug = f"{base[: 40 - len(suffix)]}{suffix}"
        number += 1
    return slug
