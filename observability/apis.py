"""GET /metrics: the service's metrics in Prometheus' text format, for a Prometheus server's scrape job."""

from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from rest_framework import permissions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from config.openapi import errors
from dpu.authentication import DpuTokenAuthentication
from observability.authentication import MetricsTokenAuthentication
from observability.collectors import exposition

# What the schema says the answer is: Prometheus' text format, version 0.0.4 (what prometheus_client writes).
MEDIA_TYPE = "text/plain; version=0.0.4"
EXAMPLE = """\
# HELP occupancy_events_total Events in POSTed batches, by outcome.
# TYPE occupancy_events_total counter
occupancy_events_total{outcome="received"} 563.0
occupancy_events_total{outcome="created"} 530.0
occupancy_events_total{outcome="duplicate"} 33.0
# HELP occupancy_pending_rows Occupancy rows still pending: a late event may change them.
# TYPE occupancy_pending_rows gauge
occupancy_pending_rows 12.0
"""


class CanReadMetrics(permissions.BasePermission):
    """Staff users, and the scrape job with METRICS_TOKEN."""

    message = "Only staff users and the metrics token (METRICS_TOKEN) may read the metrics."

    def has_permission(self, request, view):
        user = request.user
        if getattr(user, "is_metrics_scraper", False):
            return True
        return bool(user and user.is_authenticated and user.is_staff and not getattr(user, "is_dpu", False))


class JsonErrors(BaseContentNegotiation):
    """The metrics are text whatever the Accept header says, and a refusal is JSON like every error of the API:
    the Accept header chooses nothing, and a scraper that asks for text/plain is not told 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MetricsApi(APIView):
    """GET: every metric of every worker, and the gauges read from the database now."""

    # A DPU's token is known (403, not 401); the metrics token is for this endpoint alone.
    authentication_classes = [
        DpuTokenAuthentication,
        TokenAuthentication,
        SessionAuthentication,
        MetricsTokenAuthentication,
    ]
    permission_classes = [CanReadMetrics]
    renderer_classes = [JSONRenderer]  # for refusals; the metrics themselves are an HttpResponse of text
    content_negotiation_class = JsonErrors

    @extend_schema(
        operation_id="metrics",
        description=(
            "The service's metrics in Prometheus' text format (version 0.0.4): requests and latency by endpoint "
            "and status, events by outcome, refused items by reason, lateness, rows recalculated, pending rows, "
            "DPUs by status, stream clients. For a staff user's token or `Authorization: Bearer <METRICS_TOKEN>`."
        ),
        responses={
            (200, MEDIA_TYPE): OpenApiResponse(
                {"type": "string"},
                description="The metrics, one sample a line.",
                examples=[OpenApiExample("Some of the metrics", value=EXAMPLE, media_type=MEDIA_TYPE)],
            ),
            **errors(401, 403),
        },
    )
    def get(self, request):
        response = HttpResponse(exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
        add_never_cache_headers(response)  # every scrape must reach the service
        return response
