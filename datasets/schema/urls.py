"""URLs of the OpenAPI documents and their pages."""

urlpatterns: list = []
