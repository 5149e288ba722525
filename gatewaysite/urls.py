"""Gateway's URLs: admin, health, the dataset API, and the OpenAPI documents."""

from django.contrib import admin
from django.urls import include, path

from access.mcp import mcp_endpoint
from access.urls import api_patterns, schema_patterns
from gatewaysite.health import healthz
from gatewaysite.login import LimitedAuthenticationForm

admin.site.site_header = "Gateway administration"
admin.site.site_title = "Gateway admin"
admin.site.index_title = "Datasets, keys and ChatGPT"
# Failed sign-ins are limited per username and per client address (GATEWAY_LOGIN_RATE).
admin.site.login_form = LimitedAuthenticationForm

handler404 = "gatewaysite.errors.handler404"
handler500 = "gatewaysite.errors.handler500"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include((api_patterns, "api"))),
    path("mcp", mcp_endpoint, name="mcp"),
    path("", include("accounts.urls")),
    path("", include(schema_patterns)),
    path("admin/", admin.site.urls),
]
