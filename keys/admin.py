"""Admin for API keys (issue, scope, row filters, revoke, rotate) and their usage."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from datasets.models import Dataset
from keys.models import ApiKey, KeyRowFilter, UsageRecord
from keys.ratelimit import quota_used
from keys.selectors import UsageSummary, dataset_usage, key_usage, usage_by_dataset
from keys.services import IssuedKey, api_key_revoke, api_key_rotate, api_key_set_secret
from keys.usage import usage_flush

CONNECT_URL = "/admin/connect/"
# "View site" in the admin header: Gateway has no public site, its page for a visitor is Connect.
admin.site.site_url = CONNECT_URL
ISSUE_TOKEN_PREFIX = "gateway:key-issue-form:"
ISSUE_TOKEN_SECONDS = 24 * 3600
CHART_HEIGHT = 120
BAR_WIDTH = 18
BAR_GAP = 4


def usage_chart(summary: UsageSummary) -> dict:
    """Bars of requests (and errors) per day, sized for an inline SVG: nothing loaded from elsewhere."""
    peak = max((day.requests for day in summary.days), default=0) or 1
    bars = []
    for index, day in enumerate(summary.days):
        height = round(day.requests / peak * CHART_HEIGHT)
        error_height = round(day.errors / peak * CHART_HEIGHT)
        bars.append(
            {
                "x": index * (BAR_WIDTH + BAR_GAP),
                "y": CHART_HEIGHT - height,
                "height": height,
                "error_y": CHART_HEIGHT - error_height,
                "error_height": error_height,
                "day": day.day,
                "requests": day.requests,
                "errors": day.errors,
            }
        )
    return {
        "bars": bars,
        "width": len(bars) * (BAR_WIDTH + BAR_GAP),
        "height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
        "peak": peak if summary.requests_30_days else 0,
        "first": summary.days[0].day if summary.days else None,
        "last": summary.days[-1].day if summary.days else None,
    }


def _minute(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def _second(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S}"


NO_SCOPE_MESSAGE = (
    'Choose at least one dataset, or tick "all datasets": a key without datasets reads nothing.'
)


class ApiKeyForm(forms.ModelForm):
    """The key form: a key reads at least one dataset (or all of them), as `issue_key` requires."""

    class Meta:
        model = ApiKey
        fields = [
            "name",
            "owner",
            "all_datasets",
            "datasets",
            "rate",
            "quota_per_day",
            "expires_at",
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        scoped = "datasets" in self.fields and "all_datasets" in self.fields
        if scoped and not cleaned.get("all_datasets") and not cleaned.get("datasets"):
            self.add_error("datasets", NO_SCOPE_MESSAGE)
        return cleaned


class KeyRowFilterInline(admin.TabularInline):
    model = KeyRowFilter
    extra = 0
    fields = ["dataset", "column", "value"]
    verbose_name = "row filter"
    verbose_name_plural = "Row filters (the key sees only rows where the column equals the value)"


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    # Few, short columns: state, last use and creation must show without scrolling at 1280 px.
    list_display = [
        "key_name",
        "key_prefix",
        "scope",
        "limits",
        "state_shown",
        "last_used_shown",
        "created_shown",
    ]
    list_filter = ["revoked", "all_datasets"]
    search_fields = ["name", "owner", "key_id"]
    filter_horizontal = ["datasets"]
    form = ApiKeyForm
    inlines = [KeyRowFilterInline]
    actions = ["revoke_selected"]
    fieldsets = [
        (None, {"fields": ["name", "owner"]}),
        ("Scope", {"fields": ["all_datasets", "datasets"]}),
        ("Limits", {"fields": ["rate", "quota_per_day", "expires_at"]}),
    ]
    readonly_after = [
        "key_prefix",
        "state_shown",
        "created",
        "rotated_at",
        "revoked_at",
        "last_used",
    ]

    def get_fieldsets(self, request: HttpRequest, obj: ApiKey | None = None):
        if obj is None:
            return self.fieldsets
        return [("Key", {"fields": self.readonly_after}), *self.fieldsets]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return self.readonly_after if obj is not None else []

    @admin.display(description="name and owner", ordering="name")
    def key_name(self, obj: ApiKey) -> str:
        if not obj.owner:
            return obj.name
        return format_html('{}<br><span class="help">{}</span>', obj.name, obj.owner)

    @admin.display(description="key id", ordering="key_id")
    def key_prefix(self, obj: ApiKey) -> str:
        return format_html('<code class="gateway-code">{}</code>', obj.key_id)

    @admin.display(description="limits")
    def limits(self, obj: ApiKey) -> str:
        parts = [obj.rate or f"{settings.GATEWAY_DEFAULT_RATE} (default)"]
        if obj.quota_per_day:
            parts.append(f"{obj.quota_per_day}/day")
        if obj.expires_at:
            parts.append(f"expires {timezone.localtime(obj.expires_at):%Y-%m-%d}")
        return format_html_join(mark_safe("<br>"), "{}", ((part,) for part in parts))

    @admin.display(description="last used", ordering="last_used")
    def last_used_shown(self, obj: ApiKey) -> str:
        return _minute(obj.last_used) if obj.last_used else "never"

    @admin.display(description="created", ordering="created")
    def created_shown(self, obj: ApiKey) -> str:
        return f"{timezone.localtime(obj.created):%Y-%m-%d}"

    @admin.display(description="scope")
    def scope(self, obj: ApiKey) -> str:
        if obj.all_datasets:
            return "all datasets"
        return ", ".join(dataset.slug for dataset in obj.datasets.all()) or "no datasets"

    @admin.display(description="rate")
    def rate_shown(self, obj: ApiKey) -> str:
        return obj.rate or f"{settings.GATEWAY_DEFAULT_RATE} (default)"

    @admin.display(description="state")
    def state_shown(self, obj: ApiKey) -> str:
        return obj.state

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).prefetch_related("datasets")

    # Issuing: the raw key exists only in memory during the POST that creates it, and is shown
    # in that very response rather than carried through a redirect (session or cookie). A
    # one-time token in the form keeps a reload of that page from issuing a second key.
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            token = request.POST.get("issue_token", "")
            issued_pk = cache.get(f"{ISSUE_TOKEN_PREFIX}{token}") if token else None
            if issued_pk is not None:
                messages.warning(
                    request,
                    "This key was already issued by the same form; it is shown only once. "
                    "Rotate it to get a new secret.",
                )
                return HttpResponseRedirect(reverse("admin:keys_apikey_change", args=[issued_pk]))
        extra = {**(extra_context or {}), "issue_token": secrets.token_urlsafe(16)}
        return super().add_view(request, form_url, extra)

    def save_model(self, request, obj, form, change):
        if not change:
            request._gateway_raw_key = api_key_set_secret(key=obj)
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        raw_key = getattr(request, "_gateway_raw_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        token = request.POST.get("issue_token", "")
        if token:
            cache.set(f"{ISSUE_TOKEN_PREFIX}{token}", obj.pk, ISSUE_TOKEN_SECONDS)
        return self._issued(request, IssuedKey(key=obj, raw_key=raw_key), "issued")

    def _issued(self, request: HttpRequest, issued: IssuedKey, verb: str) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Key {verb}: copy it now",
            "issued": issued,
            "key": issued.key,
            "verb": verb,
            "change_url": reverse("admin:keys_apikey_change", args=[issued.key.pk]),
            "connect_url": f"{CONNECT_URL}?key={issued.key.key_id}",
        }
        response = TemplateResponse(request, "admin/keys/issued.html", context)
        # The page holds a secret: no cache may keep it.
        response["Cache-Control"] = "no-store"
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        key = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        # Usage is shown to those who may see the key; the admin refuses everyone else below.
        if key is not None and self.has_view_or_change_permission(request, key):
            summary = key_usage(key.key_id)
            extra.update(
                usage=summary,
                chart=usage_chart(summary),
                quota_today=quota_used(key.key_id) if key.quota_per_day else None,
                effective_rate=key.rate or settings.GATEWAY_DEFAULT_RATE,
                connect_url=f"{CONNECT_URL}?key={key.key_id}",
                recent=UsageRecord.objects.filter(key_id=key.key_id)[:20],
                can_revoke=self.has_change_permission(request, key),
                # Rotating shows a new working key: it needs the permission to issue one.
                can_rotate=self.has_change_permission(request, key)
                and self.has_add_permission(request),
            )
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/revoke/", wrap(self.revoke_view), name="keys_apikey_revoke"),
            path("<int:pk>/rotate/", wrap(self.rotate_view), name="keys_apikey_rotate"),
            *super().get_urls(),
        ]

    def _key_for(self, request: HttpRequest, pk: int, *, issues: bool = False) -> ApiKey:
        """The key, if the user may change it (and issue keys, for a view that shows a new secret)."""
        if not self.has_change_permission(request) or (
            issues and not self.has_add_permission(request)
        ):
            raise PermissionDenied
        key = ApiKey.objects.filter(pk=pk).first()
        if key is None:
            raise Http404("No such key.")
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        return key

    def _confirm(
        self, request: HttpRequest, key: ApiKey, action: str, explanation: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{action.capitalize()} key {key.name}?",
            "key": key,
            "action": action,
            "explanation": explanation,
            "change_url": reverse("admin:keys_apikey_change", args=[key.pk]),
        }
        return TemplateResponse(request, "admin/keys/confirm.html", context)

    def revoke_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        key = self._key_for(request, pk)
        if request.method != "POST":
            return self._confirm(
                request,
                key,
                "revoke",
                "Every call with this key is refused from now on, in every server process. "
                "This cannot be undone: issue a new key to give access again.",
            )
        api_key_revoke(key_id=key.key_id)
        self.message_user(request, f"Key {key.key_id} ({key.name}) is revoked.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:keys_apikey_change", args=[key.pk]))

    def rotate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        # A rotated key's new secret is shown to the user: as good as issuing a key.
        key = self._key_for(request, pk, issues=True)
        if request.method != "POST":
            return self._confirm(
                request,
                key,
                "rotate",
                "The key gets a new secret (same key id, scope, limits and usage history). "
                "The current key stops working at once: give the new one to its users.",
            )
        try:
            issued = api_key_rotate(key_id=key.key_id)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:keys_apikey_change", args=[key.pk]))
        return self._issued(request, issued, "rotated")

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for key in queryset.filter(revoked=False):
            api_key_revoke(key_id=key.key_id)
            count += 1
        self.message_user(request, f"{count} key(s) revoked.", messages.SUCCESS)


class UsageKeyFilter(admin.SimpleListFilter):
    """Usage of one key (records name the key by its id, which outlives the key)."""

    title = "key"
    parameter_name = "key"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [
            (key.key_id, f"{key.name} ({key.key_id})") for key in ApiKey.objects.order_by("name")
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[UsageRecord]
    ) -> QuerySet[UsageRecord]:
        return queryset.filter(key_id=self.value()) if self.value() else queryset


class UsageDatasetFilter(admin.SimpleListFilter):
    """Usage of one dataset."""

    title = "dataset"
    parameter_name = "dataset"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [
            (slug, slug) for slug in Dataset.objects.order_by("slug").values_list("slug", flat=True)
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[UsageRecord]
    ) -> QuerySet[UsageRecord]:
        return queryset.filter(dataset=self.value()) if self.value() else queryset


class UsageStatusFilter(admin.SimpleListFilter):
    """Answered calls, failed ones, or one status."""

    title = "status"
    parameter_name = "status"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        statuses = (
            UsageRecord.objects.order_by("status").values_list("status", flat=True).distinct()
        )
        return [("ok", "answered (below 400)"), ("failed", "failed (400 and above)")] + [
            (str(status), str(status)) for status in statuses
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[UsageRecord]
    ) -> QuerySet[UsageRecord]:
        value = self.value()
        if value == "ok":
            return queryset.filter(status__lt=400)
        if value == "failed":
            return queryset.filter(status__gte=400)
        if value and value.isdigit():
            return queryset.filter(status=int(value))
        return queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "time_shown",
        "key_shown",
        "dataset",
        "operation",
        "status_shown",
        "duration_shown",
        "rows",
    ]
    list_display_links = None
    list_filter = [
        UsageKeyFilter,
        UsageDatasetFilter,
        UsageStatusFilter,
        "operation",
        ("time", admin.DateFieldListFilter),
    ]
    search_fields = ["key_id", "dataset", "error_code"]
    date_hierarchy = "time"
    actions = None  # records are pruned by age (prune_usage), not picked by hand
    change_list_template = "admin/keys/usagerecord/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[UsageRecord]:
        names = ApiKey.objects.filter(key_id=OuterRef("key_id")).values("name")[:1]
        return super().get_queryset(request).annotate(key_name=Subquery(names))

    @admin.display(description="time (UTC)", ordering="time")
    def time_shown(self, record: UsageRecord) -> str:
        return _second(record.time)

    @admin.display(description="key", ordering="key_id")
    def key_shown(self, record: UsageRecord) -> str:
        if not record.key_id:
            return "-"
        name = getattr(record, "key_name", None) or "(deleted key)"
        return format_html(
            '{}<br><span class="gateway-code gateway-quiet">{}</span>', name, record.key_id
        )

    @admin.display(description="status", ordering="status")
    def status_shown(self, record: UsageRecord) -> str:
        if not record.error_code:
            return str(record.status)
        return format_html(
            '{}<br><code class="gateway-code">{}</code>', record.status, record.error_code
        )

    @admin.display(description="ms", ordering="duration_ms")
    def duration_shown(self, record: UsageRecord) -> str:
        return f"{record.duration_ms:.1f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.has_view_permission(request):
            usage_flush()
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("datasets/", wrap(self.datasets_view), name="keys_usage_datasets"),
            path("datasets/<slug:slug>/", wrap(self.dataset_view), name="keys_usage_dataset"),
            *super().get_urls(),
        ]

    def datasets_view(self, request: HttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = {row["dataset"]: row for row in usage_by_dataset()}
        known = list(Dataset.objects.order_by("slug").values_list("slug", "title"))
        table = [
            {
                "slug": slug,
                "title": title,
                **rows.pop(slug, {"requests": 0, "errors": 0, "keys": 0}),
            }
            for slug, title in known
        ]
        # Requests for slugs that are not datasets (typos, deleted datasets) are usage too.
        table += [{"slug": slug, "title": "(not a dataset)", **row} for slug, row in rows.items()]
        from django.urls import NoReverseMatch

        from keys.models import RejectedCalls
        from keys.usage import rejected_calls_by_day

        for row in table:
            # A recorded string can be anything a client put in the path: only a slug the page's
            # URL accepts gets a link, the others are shown as text.
            try:
                row["url"] = reverse("admin:keys_usage_dataset", args=[row["slug"]])
            except NoReverseMatch:
                row["url"] = None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Usage per dataset",
            "table": table,
            "rejected_reasons": [label for _, label in RejectedCalls.REASONS],
            "rejected": rejected_calls_by_day(),
        }
        return TemplateResponse(request, "admin/keys/usage_datasets.html", context)

    def dataset_view(self, request: HttpRequest, slug: str) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        summary = dataset_usage(slug)
        keys = {
            key.key_id: key
            for key in ApiKey.objects.filter(
                key_id__in=UsageRecord.objects.filter(dataset=slug).values("key_id")
            )
        }
        per_key = (
            UsageRecord.objects.filter(dataset=slug)
            .values("key_id")
            .annotate(requests=Count("id"), errors=Count("id", filter=Q(status__gte=400)))
            .order_by("-requests")
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Usage of dataset {slug}",
            "slug": slug,
            "usage": summary,
            "chart": usage_chart(summary),
            "per_key": [{**row, "key": keys.get(row["key_id"])} for row in per_key],
        }
        return TemplateResponse(request, "admin/keys/usage_dataset.html", context)
