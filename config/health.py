"""GET /health: whether this worker can serve requests, for load balancers and monitoring.

The check is one `SELECT 1` through the worker's own database connection, the one every request of this worker
uses (Django's default, kept open for CONN_MAX_AGE). It tests what the next request will meet, and costs PostgreSQL
no new connection per probe; a connection of its own would test neither.

How long it can take. A worker whose connection is gone reconnects, and the connect_timeout that
config/settings/base.py gives every PostgreSQL connection (2 seconds, per address the host name resolves to) ends
the attempt: without it, libpq waits as long as the operating system does, minutes for a host that drops packets.
The bound lives in the settings rather than here because every request needs it during an outage, not only this
one. `SELECT 1` needs no statement_timeout: it reads no table and takes no lock, so a server that answers at all
answers it at once. On SQLite nothing waits either: a database file that cannot be opened fails at once, and
`SELECT 1` never queues behind a writer on the busy timeout.

What it does not bound: a connection already open when the network to PostgreSQL went silent (packets dropped, no
reset) waits for TCP to give up; gunicorn's worker timeout ends that worker, and the load balancer's own probe
timeout has marked it down by then. A connection PostgreSQL closed (a restart) fails one probe; Django closes it
at the end of that request and the next probe connects afresh.
"""

import logging

from django.conf import settings
from django.db import Error, connection
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger(__name__)

UNREACHABLE = "The service cannot reach its database, so it can neither record nor report counts; its log says why."


def database_ping() -> bool:
    """Whether the database answers `SELECT 1` on this worker's connection. Why not goes to the log, not to the
    caller: the driver's message names hosts and users, and the caller is anonymous."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Error as exc:  # OperationalError when it cannot connect, InterfaceError for a connection gone bad
        logger.warning("Health check: the database is unreachable: %s", str(exc).strip())
        return False
    return True


@extend_schema_serializer(component_name="Health")
class HealthOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "error"])
    database = serializers.ChoiceField(choices=["ok", "unreachable"])
    version = serializers.CharField(help_text="The version of this service.")
    detail = serializers.CharField(required=False, help_text="Only when something is wrong: what, for a person.")


class HealthApi(APIView):
    """GET: 200 when this worker can reach its database, 503 (within a few seconds) when it cannot. No token is
    asked for or read, so that a load balancer's probe needs none and a stale one cannot turn 200 into 401."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health",
        responses={
            200: OpenApiResponse(HealthOutputSerializer, description="This worker can reach its database."),
            503: OpenApiResponse(HealthOutputSerializer, description="This worker cannot reach its database."),
        },
        examples=[
            OpenApiExample("Up", value={"status": "ok", "database": "ok", "version": "1.0.0"}, status_codes=["200"]),
            OpenApiExample(
                "Database unreachable",
                value={"status": "error", "database": "unreachable", "version": "1.0.0", "detail": UNREACHABLE},
                status_codes=["503"],
            ),
        ],
    )
    def get(self, request):
        body = {"status": "ok", "database": "ok", "version": settings.SERVICE_VERSION}
        code = status.HTTP_200_OK
        if not database_ping():
            body.update(status="error", database="unreachable", detail=UNREACHABLE)
            code = status.HTTP_503_SERVICE_UNAVAILABLE
        response = Response(HealthOutputSerializer(body).data, status=code)
        add_never_cache_headers(response)  # a cached "ok" would hide an outage
        return response

    def head(self, request):
        """GET's status and headers without its body. Some load balancers probe with HEAD, and under WSGI Django
        sends the body it was given, which gunicorn drops with a warning in its log, once per probe."""
        response = self.get(request)
        response.data = None  # renders as no body at all
        return response
