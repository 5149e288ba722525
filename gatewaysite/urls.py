"""Gateway's URLs: admin, health, the dataset API, and the OpenAPI documents."""

from django.contrib import admin
from django.urls import include, path

from access.mcp import mcp_endpoint
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
    path("api/v1/", include("access.urls")),
    path("mcp", mcp_endpoint, name="mcp"),
    path("", include("accounts.urls")),
    path("", include("datasets.schema.urls")),
    path("admin/", admin.site.urls),
]
