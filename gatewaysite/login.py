"""Failed sign-ins to /admin/login/ are limited per username and per client address.

Both budgets (GATEWAY_LOGIN_RATE each) are django-ratelimit counters in the shared cache, so
every worker and every instance counts the same failures. Only failures count: once a budget is
spent, the form refuses every attempt for that username or from that address, even with the
right password, until its window ends; a successful sign-in never uses up a budget. When the
cache does not answer, sign-ins are let through and a warning is logged (as for key limits).
"""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from gatewaysite.cache_outage import warn_cache_down

USERNAME_GROUP = "gateway.login.username"
ADDRESS_GROUP = "gateway.login.address"


def _budgets(username: str) -> list[tuple[str, object]]:
    normalized = username.strip().casefold()
    return [
        (USERNAME_GROUP, lambda group, request: normalized),
        # "ip": the client address (gatewaysite.security.client_address, IPv6 grouped by /64).
        (ADDRESS_GROUP, "ip"),
    ]


def _usages(request: HttpRequest, username: str, *, increment: bool) -> list[dict]:
    usages = []
    for group, key in _budgets(username):
        try:
            usage = get_usage(
                request, group=group, key=key, rate=settings.GATEWAY_LOGIN_RATE, increment=increment
            )
        except Exception as error:
            warn_cache_down(
                "Shared cache unavailable (%s): failed sign-ins are not limited until it answers.",
                type(error).__name__,
            )
            return []
        # django-ratelimit reports a failed cache read as a zero limit: fail open as above.
        if usage is not None and usage["limit"] > 0:
            usages.append(usage)
    return usages


def login_wait(request: HttpRequest, username: str) -> int | None:
    """Seconds until this username and address may try again, or None while both may."""
    spent = [
        usage
        for usage in _usages(request, username, increment=False)
        if usage["count"] >= usage["limit"]
    ]
    if not spent:
        return None
    return max(1, max(int(usage["time_left"]) + 1 for usage in spent))


def login_failure_record(request: HttpRequest, username: str) -> None:
    """Count one failed sign-in against the username's and the address's budgets."""
    _usages(request, username, increment=True)


class LimitedAuthenticationForm(AdminAuthenticationForm):
    """The admin's sign-in form, refusing attempts once the failure budget is spent."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        request = self.request
        assert request is not None  # the admin's login view always passes its request
        wait = login_wait(request, username)
        if wait is not None:
            # Refused before the password is checked: a spent budget answers nothing about it.
            minutes = math.ceil(wait / 60)
            raise ValidationError(
                "Too many failed sign-ins for this username or from this address: try again in "
                f"{minutes} minute{'s' if minutes != 1 else ''}.",
                code="login_limited",
            )
        try:
            return super().clean()
        except ValidationError:
            login_failure_record(request, username)
            raise
