"""Views that fail in each way a request can, for the error-shape tests."""

from django.urls import include, path
from django_ratelimit.exceptions import Ratelimited
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from datasets.engine.errors import QueryError, SourceUnavailable


def failing(exception):
    class Failing(APIView):
        authentication_classes = []
        permission_classes = [AllowAny]

        def get(self, request):
            raise exception

    return Failing.as_view()


def plain_crash(request):
    raise RuntimeError("secret internals")


handler404 = "gatewaysite.errors.handler404"
handler500 = "gatewaysite.errors.handler500"

urlpatterns = [
    path("api/v1/bad/", failing(QueryError("unknown_column", "Unknown column 'x'."))),
    path("api/v1/limited/", failing(Ratelimited())),
    path("api/v1/down/", failing(SourceUnavailable("The database is not answering."))),
    path("api/v1/crash/", failing(RuntimeError("secret internals"))),
    path("api/v1/plain-crash/", plain_crash),
    path("", include("gatewaysite.urls")),
]
