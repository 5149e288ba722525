"""Gateway's authorization server on django-oauth-toolkit: the validator's few rules, the
sign-in and consent pages, the metadata documents and client registration.

- PKCE (S256) is required for every client except the ones the admin creates for GPT Actions
  (the GPT Builder sends no PKCE); those accept the GPT Builder's callback pattern.
- Every authorization names one of Gateway's two resources (RFC 8707): `<base>/mcp` or
  `<base>/api/v1/`. A client that names none gets the REST API (GPT Actions clients) or the MCP
  endpoint (every other client); any other resource is refused with `invalid_target`.
- A redirect over plain http is accepted for loopback addresses only (native MCP clients).
- MCP clients may name themselves by the https URL of their client ID metadata document (CIMD):
  django-oauth-toolkit fetches it (https only, public addresses only, no redirects, bounded in
  size and time) when the URL's host is in GATEWAY_OAUTH_CIMD_HOSTS.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import JsonResponse
from django.http.request import validate_host
from django.urls import reverse_lazy
from django_ratelimit.core import get_usage
from oauth2_provider.cimd import is_cimd_client_id
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.models import get_application_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import (
    AuthorizationView,
    DynamicClientRegistrationView,
    OAuthProtectedResourceMetadataView,
    OAuthServerMetadataView,
)
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from accounts.models import GptActionsClient
from accounts.policy import policy_for_user
from accounts.resources import API, MCP, resource_door, resource_identifiers, site_base
from datasets.selectors import dataset_specs
from gatewaysite.cache_outage import warn_cache_down
from gatewaysite.errors import error_json
from gatewaysite.login import LimitedAuthenticationForm
from gatewaysite.security import HEADER, POLICY, content_security_policy

ACCESS_TOKEN_PREFIX = "gwo_"
REFRESH_TOKEN_PREFIX = "gwr_"
GPT_CALLBACK = re.compile(
    r"^https://(chatgpt\.com|chat\.openai\.com)/aip/g-[A-Za-z0-9]{1,64}/oauth/callback$"
)
GPT_CALLBACK_RULE = "https://chatgpt.com/aip/g-<GPT id>/oauth/callback"
REGISTRATION_GROUP = "gateway.oauth.registration"
DCR_GRANT_TYPES = {"authorization_code", "refresh_token"}


def access_token_generate(request) -> str:
    """A new access token: recognisable by its prefix, 256 random bits."""
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def refresh_token_generate(request) -> str:
    """A new refresh token."""
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def is_gpt_actions(application) -> bool:
    """Was this client created by the admin for GPT Actions?"""
    if application is None:
        return False
    return GptActionsClient.objects.filter(application_id=application.pk).exists()


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class GatewayOAuth2Validator(OAuth2Validator):
    """django-oauth-toolkit's validator with Gateway's PKCE and redirect rules."""

    def is_pkce_required(self, client_id, request):
        application = getattr(request, "client", None)
        if application is None or application.client_id != client_id:
            application = get_application_model().objects.filter(client_id=client_id).first()
        return not is_gpt_actions(application)

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        if is_gpt_actions(request.client):
            return GPT_CALLBACK.match(redirect_uri or "") is not None
        if not super().validate_redirect_uri(client_id, redirect_uri, request, *args, **kwargs):
            return False
        parts = urlsplit(redirect_uri)
        return parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname))


def _invalid_target(resource: str, state: str | None, redirect_uri: str) -> OAuthToolkitError:
    return OAuthToolkitError(
        error=CustomOAuth2Error(
            error="invalid_target",
            description=(
                f"The resource '{resource[:200]}' is not served here: ask for this server's MCP "
                "endpoint (<base>/mcp) or its REST API (<base>/api/v1/)."
            ),
            state=state,
        ),
        redirect_uri=redirect_uri,
    )


def cimd_host_refusal(client_id: str) -> str | None:
    """Why a client ID metadata document URL is not accepted here, None when it may be fetched."""
    if not oauth2_settings.CIMD_ENABLED or not is_cimd_client_id(client_id):
        return None
    host = urlsplit(client_id).hostname or ""
    if validate_host(host, oauth2_settings.CIMD_ALLOWED_HOSTS or []):
        return None
    allowed = ", ".join(oauth2_settings.CIMD_ALLOWED_HOSTS or []) or "none"
    return (
        f"Clients whose metadata document is on {host[:100] or 'no host'} are not accepted here "
        f"(GATEWAY_OAUTH_CIMD_HOSTS allows: {allowed[:300]}). Ask the Gateway admin to allow "
        "that host, or register the client at /oauth/register/."
    )


def _client_refused(description: str) -> FatalClientError:
    # Fatal: the client is unknown, so its redirect cannot be trusted; an error page instead.
    return FatalClientError(
        error=CustomOAuth2Error(error="invalid_client", description=description)
    )


def _callback_policy(redirect_uri: str | None) -> str:
    """This page's policy, letting its form (and the redirect that follows) reach the callback."""
    parts = urlsplit(redirect_uri or "")
    if parts.scheme not in ("http", "https") or not re.fullmatch(
        r"[A-Za-z0-9.\-:\[\]]+", parts.netloc
    ):
        return content_security_policy()
    directives = []
    for name, sources in POLICY.items():
        if name == "form-action":
            sources = [*sources, f"{parts.scheme}://{parts.netloc}"]
        directives.append(" ".join([name, *sources]))
    return "; ".join(directives)


class SignInForm(LimitedAuthenticationForm):
    """The sign-in form of the OAuth flow: any active user (not only staff), same limits."""

    confirm_login_allowed = AuthenticationForm.confirm_login_allowed


class SignInView(LoginView):
    """Sign-in page of the OAuth flow, in Gateway's look."""

    template_name = "oauth/sign_in.html"
    authentication_form = SignInForm
    redirect_authenticated_user = False


class ConsentView(AuthorizationView):
    """The consent page: names the app and the datasets it will read; no grant, no token."""

    template_name = "oauth/authorize.html"
    login_url = reverse_lazy("oauth-sign-in")

    def _default_resource(self, application) -> str:
        door = API if is_gpt_actions(application) else MCP
        return resource_identifiers(self.request)[door][0]

    def _policy(self, application):
        return policy_for_user(self.request.user, application)

    def get(self, request, *args, **kwargs):
        refusal = cimd_host_refusal(request.GET.get("client_id", ""))
        if refusal is not None:
            return self.error_response(_client_refused(refusal), application=None)
        for resource in request.GET.getlist("resource"):
            if resource_door(request, resource) is None:
                return self.error_response(
                    _invalid_target(
                        resource, request.GET.get("state"), request.GET.get("redirect_uri", "")
                    ),
                    application=None,
                )
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        application = kwargs.get("application")
        policy = self._policy(application) if application is not None else None
        specs = policy.readable(dataset_specs()) if policy is not None else []
        resources = (kwargs.get("resource") or "").split() or [self._default_resource(application)]
        doors = {resource_door(self.request, resource) for resource in resources}
        context["datasets"] = [
            {
                "slug": spec.slug,
                "title": spec.title,
                "filters": sorted(policy.filters_for(spec).items()),
            }
            for spec in specs
        ]
        context["nothing_to_share"] = not specs
        if (
            application is not None
            and application.registration_source == application.RegistrationSource.CIMD
        ):
            # The client named itself by a URL it controls: show whose host vouches for it.
            context["client_host"] = urlsplit(application.client_id).hostname
        context["doors"] = sorted(door for door in doors if door)
        return context

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        response[HEADER] = _callback_policy(context.get("redirect_uri"))
        return response

    def form_valid(self, form):
        application = get_application_model().objects.get(client_id=form.cleaned_data["client_id"])
        state, redirect_uri = form.cleaned_data.get("state"), form.cleaned_data["redirect_uri"]
        resources = (form.cleaned_data.get("resource") or "").split()
        for resource in resources:
            if resource_door(self.request, resource) is None:
                return self.error_response(
                    _invalid_target(resource, state, redirect_uri), application
                )
        if not resources:
            form.cleaned_data["resource"] = self._default_resource(application)
        policy = self._policy(application)
        if policy is None or not policy.readable(dataset_specs()):
            # Nothing to share: the client hears access_denied, as if the user had declined.
            form.cleaned_data["allow"] = False
        response = super().form_valid(form)
        response[HEADER] = _callback_policy(redirect_uri)
        return response


def _with_issuer(response, request):
    data = json.loads(response.content)
    data["issuer"] = site_base(request)
    return JsonResponse(data, headers={"Access-Control-Allow-Origin": "*"})


class ServerMetadataView(OAuthServerMetadataView):
    """RFC 8414 metadata at /.well-known/oauth-authorization-server, with Gateway's public URL."""

    def _get_endpoint_url(self, request, view_name, required=False):
        from django.urls import NoReverseMatch, reverse

        try:
            path = reverse(f"oauth2_provider:{view_name}")
        except NoReverseMatch:
            if required:
                raise
            return None
        return site_base(request) + path

    def get(self, request, *args, **kwargs):
        return _with_issuer(super().get(request, *args, **kwargs), request)


class ProtectedResourceMetadataView(OAuthProtectedResourceMetadataView):
    """RFC 9728 metadata of a resource: the site and /api/v1/ (the REST API), or /mcp."""

    resource_path = ""

    def get_resource(self, request):
        return site_base(request) + self.resource_path

    def get_authorization_servers(self, request):
        return [site_base(request)]


def registration_wait(request) -> int | None:
    """Seconds until this address may register another client, None while it may."""
    rate = settings.GATEWAY_OAUTH_REGISTRATION_RATE
    try:
        usage = get_usage(request, group=REGISTRATION_GROUP, key="ip", rate=rate, increment=True)
    except Exception as error:
        warn_cache_down(
            "Shared cache unavailable (%s): client registrations are not limited until it answers.",
            type(error).__name__,
        )
        return None
    if usage is None or not usage["should_limit"] or usage["limit"] == 0:
        return None
    return max(1, int(usage["time_left"]) + 1)


class RegistrationView(DynamicClientRegistrationView):
    """RFC 7591 registration for MCP clients: authorization code only, limited per address."""

    def post(self, request, *args, **kwargs):
        wait = registration_wait(request)
        if wait is not None:
            return error_json(
                429,
                "rate_limited",
                f"Too many client registrations from this address "
                f"({settings.GATEWAY_OAUTH_REGISTRATION_RATE}): retry after {wait} seconds.",
                retry_after=wait,
            )
        try:
            metadata = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            metadata = None
        grant_types = metadata.get("grant_types") if isinstance(metadata, dict) else None
        if isinstance(grant_types, list) and not set(grant_types) <= DCR_GRANT_TYPES:
            return JsonResponse(
                {
                    "error": "invalid_client_metadata",
                    "error_description": "Only the authorization_code and refresh_token grant "
                    "types can be registered.",
                },
                status=400,
            )
        return super().post(request, *args, **kwargs)
