"""Gateway's authorization server on django-oauth-toolkit: the validator's few rules, the
sign-in and consent pages, the metadata documents and client registration.

- PKCE (S256) is required for every client except the ones the admin creates for GPT Actions
  (the GPT Builder sends no PKCE); those accept the GPT Builder's callback pattern. A challenge
  by any other method (`plain`) is refused before the consent page.
- An authorization code works once: presenting it again revokes the tokens it gave.
- Every authorization names one of Gateway's two resources (RFC 8707): `<base>/mcp` or
  `<base>/api/v1/`. A client that names none gets the REST API (GPT Actions clients) or the MCP
  endpoint (every other client); any other resource is refused with `invalid_target`.
- A redirect over plain http is accepted for loopback addresses only (native MCP clients), at
  registration (RFC 7591, `invalid_redirect_uri`) as at authorization.
- A registration is small (REGISTRATION_MAX_BYTES, REGISTRATION_MAX_REDIRECT_URIS) and limited
  per client address, counted in the database so that the limit holds across processes.
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
from django.http import HttpResponse, JsonResponse
from django.http.request import validate_host
from django.urls import reverse_lazy
from oauth2_provider.cimd import is_cimd_client_id
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.models import get_application_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import (
    AuthorizationView,
    DynamicClientRegistrationManagementView,
    DynamicClientRegistrationView,
    OAuthProtectedResourceMetadataView,
    OAuthServerMetadataView,
)
from oauthlib.oauth2.rfc6749 import errors as oauth_errors
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error
from oauthlib.uri_validate import is_absolute_uri

from accounts.models import GptActionsClient
from accounts.policy import policy_for_user
from accounts.resources import API, MCP, resource_door, resource_identifiers, site_base
from accounts.services import (
    RegistrationLimited,
    authorization_code_replay,
    authorization_code_spend,
    client_registration_count,
)
from datasets.selectors import dataset_specs
from gatewaysite.errors import error_json
from gatewaysite.login import LimitedAuthenticationForm
from gatewaysite.security import HEADER, POLICY, client_address, content_security_policy

ACCESS_TOKEN_PREFIX = "gwo_"
REFRESH_TOKEN_PREFIX = "gwr_"
GPT_CALLBACK = re.compile(
    r"^https://(chatgpt\.com|chat\.openai\.com)/aip/g-[A-Za-z0-9]{1,64}/oauth/callback$"
)
GPT_CALLBACK_RULE = "https://chatgpt.com/aip/g-<GPT id>/oauth/callback"
DCR_GRANT_TYPES = {"authorization_code", "refresh_token"}
# A client's metadata is a few hundred bytes; the bounds leave ample room (the same 16 KB as a
# client ID metadata document) and keep a flood of large registrations cheap to refuse.
REGISTRATION_MAX_BYTES = 16 * 1024
REGISTRATION_MAX_REDIRECT_URIS = 20
CLIENT_NAME_MAX_CHARS = 255


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
        challenge = getattr(request, "code_challenge", None)
        method = getattr(request, "code_challenge_method", None)
        if challenge is not None and method != "S256":
            # Refused here, right after the redirect is validated, so the client hears it at
            # once: django-oauth-toolkit refuses `plain` only when it saves the code, after the
            # person has been shown the consent page and allowed the app.
            raise oauth_errors.InvalidRequestError(
                description=(
                    f"code_challenge_method {(method or 'plain')[:20]!r} is not accepted: send "
                    "code_challenge_method=S256 with an S256 code_challenge (RFC 7636)."
                ),
                request=request,
            )
        application = getattr(request, "client", None)
        if application is None or application.client_id != client_id:
            application = get_application_model().objects.filter(client_id=client_id).first()
        return not is_gpt_actions(application)

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        if super().validate_code(client_id, code, client, request, *args, **kwargs):
            return True
        # A code exchanged already: whoever holds it now may not be the client it was issued
        # to, so the tokens of the first exchange go too (RFC 6749 section 4.1.2).
        authorization_code_replay(code=code or "")
        return False

    def save_bearer_token(self, token, request, *args, **kwargs):
        result = super().save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "authorization_code" and request.code:
            authorization_code_spend(code=request.code, access_token=token["access_token"])
        return result

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
                "filters": sorted(policy.filters_for(spec).items()) if policy else [],
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


def registration_address(request) -> str:
    """The client address registrations are counted by: the same as every per-address limit
    (gatewaysite.security.client_address), an IPv6 address by its /64 network."""
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return str(ip)


def _metadata_error(error: str, description: str, status: int = 400) -> JsonResponse:
    """An RFC 7591 error response (section 3.2.2)."""
    return JsonResponse({"error": error, "error_description": description}, status=status)


def _redirect_uri_refusal(uri) -> str | None:
    """Why a redirect URI may not be registered, None when it may."""
    if not isinstance(uri, str):
        return "Each redirect URI must be a string."
    shown = json.dumps(uri[:100])
    if not uri or any(character.isspace() for character in uri):
        return f"The redirect URI {shown} is empty or contains white space."
    if not is_absolute_uri(uri):
        # What the authorization request will require of it (oauthlib): refused now, not then.
        return (
            f"The redirect URI {shown} is not an absolute URI (RFC 3986): characters such as "
            '" < > must be percent-encoded, and it carries no #fragment.'
        )
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and _loopback(parts.hostname):
        return None
    return (
        f"The redirect URI {shown} is not accepted: use https, or plain http to a loopback "
        "address only (http://127.0.0.1:<port>/..., http://[::1]:<port>/... or "
        "http://localhost:<port>/..., OAuth 2.1 and RFC 8252)."
    )


def registration_refusal(request) -> JsonResponse | None:
    """Why this registration (RFC 7591) or update (RFC 7592) is refused, None when its metadata
    may go on to django-oauth-toolkit: bounded in size, authorization code only, and redirect
    URIs that are https or loopback http."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= REGISTRATION_MAX_BYTES:
        length = len(request.body)  # a body without Content-Length is bounded by Django
    if length > REGISTRATION_MAX_BYTES:
        return _metadata_error(
            "invalid_client_metadata",
            f"The registration is {length} bytes: at most {REGISTRATION_MAX_BYTES} are accepted.",
            status=413,
        )
    try:
        metadata = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _metadata_error("invalid_client_metadata", "The body must be a JSON object.")
    if not isinstance(metadata, dict):
        return _metadata_error("invalid_client_metadata", "The body must be a JSON object.")
    grant_types = metadata.get("grant_types")
    if isinstance(grant_types, list) and not set(map(str, grant_types)) <= DCR_GRANT_TYPES:
        return _metadata_error(
            "invalid_client_metadata",
            "Only the authorization_code and refresh_token grant types can be registered.",
        )
    name = metadata.get("client_name")
    if isinstance(name, str) and len(name) > CLIENT_NAME_MAX_CHARS:
        return _metadata_error(
            "invalid_client_metadata",
            f"client_name is {len(name)} characters: at most {CLIENT_NAME_MAX_CHARS}.",
        )
    uris = metadata.get("redirect_uris")
    if isinstance(uris, list):
        if len(uris) > REGISTRATION_MAX_REDIRECT_URIS:
            return _metadata_error(
                "invalid_client_metadata",
                f"{len(uris)} redirect URIs: at most {REGISTRATION_MAX_REDIRECT_URIS} can be "
                "registered.",
            )
        for uri in uris:
            refusal = _redirect_uri_refusal(uri)
            if refusal is not None:
                return _metadata_error("invalid_redirect_uri", refusal)
    return None


class RegistrationView(DynamicClientRegistrationView):
    """RFC 7591 registration for MCP clients: authorization code only, limited per address."""

    def post(self, request, *args, **kwargs):
        address = registration_address(request)
        rate = settings.GATEWAY_OAUTH_REGISTRATION_RATE
        refusal = registration_refusal(request)
        if refusal is not None:
            return refusal
        try:
            counted = client_registration_count(address=address, rate=rate)
        except RegistrationLimited as limited:
            return error_json(
                429,
                "rate_limited",
                f"Too many client registrations from this address ({rate}): retry after "
                f"{limited.wait} seconds.",
                retry_after=limited.wait,
            )
        response: HttpResponse = super().post(request, *args, **kwargs)
        if counted is not None and response.status_code != 201:
            counted.delete()  # refused by django-oauth-toolkit: nothing was registered
        return response


class RegistrationManagementView(DynamicClientRegistrationManagementView):
    """RFC 7592 reading, update and deletion of a registration: an update obeys the same rules
    as a registration."""

    def put(self, request, *args, **kwargs):
        refusal = registration_refusal(request)
        if refusal is not None:
            return refusal
        return super().put(request, *args, **kwargs)
