"""Admin: grants of users and groups (datasets, row filters, limits, usage), the OAuth clients
of GPT Actions (created here; the secret is shown once), and the connected apps and people's
access tokens, with revoke. No token or client secret is ever shown: only checksums and hashes
are stored."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Max, Q
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from accounts.models import AccessGrant, AppToken, ConnectedApp, GptActionsClient, GrantRowFilter
from accounts.oauth import GPT_CALLBACK_RULE
from accounts.resources import site_base
from accounts.services import app_tokens_revoke, gpt_actions_client_create
from keys.admin import usage_chart
from keys.models import UsageRecord
from keys.selectors import _summary

# django-oauth-toolkit's own admin pages (applications, tokens, codes) are not offered: they show
# fields Gateway does not use and let a token be deleted while its refresh token lives on.
# Connected apps and access tokens below replace them.
for model in (
    get_application_model(),
    get_access_token_model(),
    get_refresh_token_model(),
    get_grant_model(),
    get_id_token_model(),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)

COMBINING_RULE = (
    "A user's access is the union of the user's own grant and the grants of the user's groups. "
    "Row filters of a dataset: none if any grant that covers the dataset has no filter on it; "
    "otherwise the filters of one grant apply (the user's own grant first, then the groups' by "
    "name). Rate limit and quota: the user's own grant's; without one, the most generous group's."
)


class GrantRowFilterInline(admin.TabularInline):
    model = GrantRowFilter
    extra = 0
    verbose_name = "row filter"
    verbose_name_plural = "row filters (only rows where the column equals the value)"


@admin.register(AccessGrant)
class AccessGrantAdmin(admin.ModelAdmin):
    """What a user or a group may read through OAuth apps."""

    list_display = ["holder", "scope", "rate_shown", "quota_per_day", "created"]
    list_filter = ["all_datasets"]
    search_fields = ["user__username", "group__name"]
    autocomplete_fields = []
    filter_horizontal = ["datasets"]
    inlines = [GrantRowFilterInline]
    readonly_fields = ["usage"]
    fieldsets = [
        (None, {"fields": ["user", "group"], "description": COMBINING_RULE}),
        ("Datasets", {"fields": ["all_datasets", "datasets"]}),
        ("Limits", {"fields": ["rate", "quota_per_day"]}),
        ("Usage", {"fields": ["usage"]}),
    ]

    @admin.display(description="datasets")
    def scope(self, obj: AccessGrant) -> str:
        if obj.all_datasets:
            return "all datasets"
        return ", ".join(dataset.slug for dataset in obj.datasets.all()) or "none"

    @admin.display(description="rate")
    def rate_shown(self, obj: AccessGrant) -> str:
        return obj.rate or "default"

    @admin.display(description="usage of the user's apps")
    def usage(self, obj: AccessGrant) -> str:
        if obj.pk is None or obj.user_id is None:
            return "Usage is recorded per user: see the grant of each member."
        summary = _summary(UsageRecord.objects.filter(key_id__startswith=f"u:{obj.user_id}:"))
        return mark_safe(
            render_to_string(
                "admin/keys/_usage.html", {"usage": summary, "chart": usage_chart(summary)}
            )
        )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "group")


class GptActionsClientForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        help_text="The GPT's name: the consent page shows it to the people who sign in.",
    )


@admin.register(GptActionsClient)
class GptActionsClientAdmin(admin.ModelAdmin):
    """OAuth clients of custom GPTs: created here, with the values to paste into the GPT Builder."""

    list_display = ["__str__", "client_id", "created"]

    @admin.display(description="client id")
    def client_id(self, obj: GptActionsClient) -> str:
        return format_html('<code class="gateway-code">{}</code>', obj.application.client_id)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj: GptActionsClient) -> None:
        # The OAuth client goes too, and with it every code and token issued to it.
        obj.application.delete()

    def delete_queryset(self, request, queryset) -> None:
        for client in queryset.select_related("application"):
            client.application.delete()

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = GptActionsClientForm(request.POST or None)
        created = None
        if request.method == "POST" and form.is_valid():
            try:
                created = gpt_actions_client_create(
                    name=form.cleaned_data["name"], created_by=request.user
                )
            except ValidationError as error:
                form.add_error("name", error)
        base = site_base(request)
        context = {
            **self.admin_site.each_context(request),
            "title": "Connect a GPT with OAuth",
            "opts": self.model._meta,
            "form": form,
            "created": created,
            "authorization_url": f"{base}{reverse('oauth2_provider:authorize')}",
            "token_url": f"{base}{reverse('oauth2_provider:token')}",
            "scope": "datasets",
            "callback_rule": GPT_CALLBACK_RULE,
            "schema_url": f"{base}/openapi.json",
            "changelist_url": reverse("admin:accounts_gptactionsclient_changelist"),
        }
        return TemplateResponse(request, "admin/accounts/gpt_actions.html", context)


def _may_revoke(request) -> bool:
    codename = get_permission_codename("revoke", AppToken._meta)
    return request.user.has_perm(f"{AppToken._meta.app_label}.{codename}")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Pages to look at, never to edit: these rows are written by the authorization server."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_revoke_permission(self, request) -> bool:
        return _may_revoke(request)


REGISTERED_BY = {
    "dcr": "registered itself (RFC 7591)",
    "cimd": "metadata document",
}


@admin.register(ConnectedApp)
class ConnectedAppAdmin(ReadOnlyAdmin):
    """Every OAuth client: who created it, when a person last signed in through it, revoke."""

    list_display = ["name", "kind", "client_id_shown", "created_by", "created", "last_token"]
    list_filter = ["registration_source"]
    search_fields = ["name", "client_id"]
    fields = readonly_fields = (
        "name",
        "kind",
        "client_id",
        "created_by",
        "redirect_uris",
        "created",
        "tokens",
    )
    actions = ["revoke_access"]

    def get_queryset(self, request):
        people = Q(accesstoken__user__isnull=False)
        return (
            super()
            .get_queryset(request)
            .select_related("user", "gpt_actions")
            .annotate(
                last_token_at=Max("accesstoken__created", filter=people),
                live_tokens=Count(
                    "accesstoken", filter=people & Q(accesstoken__expires__gt=timezone.now())
                ),
            )
        )

    @admin.display(description="kind")
    def kind(self, obj: ConnectedApp) -> str:
        if hasattr(obj, "gpt_actions"):
            return "GPT Actions"
        if obj.registration_source in REGISTERED_BY:
            return "MCP client"
        return "other"

    @admin.display(description="client id", ordering="client_id")
    def client_id_shown(self, obj: ConnectedApp) -> str:
        return format_html('<code class="gateway-code">{}</code>', obj.client_id)

    @admin.display(description="created by")
    def created_by(self, obj: ConnectedApp) -> str:
        if obj.user is not None:
            return obj.user.get_username()
        return REGISTERED_BY.get(obj.registration_source, "the admin")

    @admin.display(description="last sign-in", ordering="last_token_at")
    def last_token(self, obj: ConnectedApp):
        return obj.last_token_at or "never"

    @admin.display(description="access tokens")
    def tokens(self, obj: ConnectedApp) -> str:
        url = reverse("admin:accounts_apptoken_changelist") + f"?application__id__exact={obj.pk}"
        return format_html('<a href="{}">{} valid now: see them all</a>', url, obj.live_tokens)

    @admin.action(description="Revoke every token of the selected apps", permissions=["revoke"])
    def revoke_access(self, request, queryset):
        count = app_tokens_revoke(application_ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            f"{count} access token(s) revoked, with their refresh tokens: the apps must send "
            "their people through sign-in again.",
            messages.SUCCESS,
        )


class TokenStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("valid", "valid"), ("expired", "expired")]

    def queryset(self, request, queryset):
        if self.value() == "valid":
            return queryset.filter(expires__gt=timezone.now())
        if self.value() == "expired":
            return queryset.filter(expires__lte=timezone.now())
        return queryset


@admin.register(AppToken)
class AppTokenAdmin(ReadOnlyAdmin):
    """People's access tokens, per user and per app; revoking one revokes its refresh token."""

    list_display = ["__str__", "user", "application", "door", "created", "expires", "state"]
    list_filter = [TokenStateFilter, "application", "user"]
    search_fields = ["user__username", "application__name"]
    fields = readonly_fields = (
        "user",
        "application",
        "door",
        "scope",
        "created",
        "expires",
        "state",
    )
    actions = ["revoke_selected"]

    def get_queryset(self, request):
        # DCR's registration access tokens (no user) manage a client: they read no data.
        return (
            super()
            .get_queryset(request)
            .filter(user__isnull=False)
            .select_related("user", "application")
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a token alone would leave its refresh token able to mint another: revoke.
        return False

    @admin.display(description="for")
    def door(self, obj: AppToken) -> str:
        # The resource it was issued for (RFC 8707): /mcp or /api/v1/.
        return ", ".join(urlsplit(uri).path or "/" for uri in obj.resource or []) or "none"

    @admin.display(description="state")
    def state(self, obj: AppToken) -> str:
        return "valid" if obj.expires > timezone.now() else "expired"

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        count = app_tokens_revoke(token_ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            f"{count} access token(s) revoked, with their refresh tokens.",
            messages.SUCCESS,
        )
