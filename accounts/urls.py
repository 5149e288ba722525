"""The authorization server's URLs: metadata at the site root, the OAuth endpoints under /oauth/."""

from django.urls import include, path
from oauth2_provider import views as oauth_views

from accounts import oauth

# django-oauth-toolkit's metadata view finds the endpoints by these names in its namespace.
oauth_patterns = [
    path("authorize/", oauth.ConsentView.as_view(), name="authorize"),
    path("token/", oauth_views.TokenView.as_view(), name="token"),
    path("revoke/", oauth_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("register/", oauth.RegistrationView.as_view(), name="dcr-register"),
    path(
        "register/<str:client_id>/",
        oauth.RegistrationManagementView.as_view(),
        name="dcr-register-management",
    ),
]

urlpatterns = [
    path(
        ".well-known/oauth-authorization-server",
        oauth.ServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path(
        ".well-known/oauth-protected-resource",
        oauth.ProtectedResourceMetadataView.as_view(),
        name="oauth-resource-metadata",
    ),
    path(
        ".well-known/oauth-protected-resource/api/v1/",
        oauth.ProtectedResourceMetadataView.as_view(resource_path="/api/v1/"),
    ),
    path(
        ".well-known/oauth-protected-resource/mcp",
        oauth.ProtectedResourceMetadataView.as_view(resource_path="/mcp"),
        name="oauth-resource-metadata-mcp",
    ),
    path("oauth/sign-in/", oauth.SignInView.as_view(), name="oauth-sign-in"),
    path("oauth/", include((oauth_patterns, "oauth2_provider"))),
]
