"""Admin: grants of users and groups (datasets, row filters, limits, usage), and the OAuth
clients of GPT Actions (created here; the secret is shown once)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from accounts.models import AccessGrant, GptActionsClient, GrantRowFilter
from accounts.oauth import GPT_CALLBACK_RULE
from accounts.resources import site_base
from accounts.services import gpt_actions_client_create
from keys.admin import usage_chart
from keys.models import UsageRecord
from keys.selectors import _summary

# django-oauth-toolkit's own admin pages (applications, tokens, codes) are not offered: revoking
# is done by deleting the grant, deactivating the user, or deleting a GPT Actions client.
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
                created = gpt_actions_client_create(name=form.cleaned_data["name"])
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
