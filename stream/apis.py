"""GET /stream: Server-Sent Events of count changes, served by the ASGI server (make run, make serve).

The view is DRF's (the same authentication, permissions, errors and schema as every endpoint); what it returns
streams from the event loop: the client's queue in stream.hub, with no thread held while the connection idles.
"""

import asyncio
import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections, connection
from django.db.models import Max, Min
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException, NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.views import APIView

from config.api import check_query_params, format_instant
from config.openapi import errors
from config.permissions import IsStaffOrReadOnly
from observability import metrics
from occupancy.apis import space_ids_param
from occupancy.selectors import space_list_with_counts
from spaces.models import Space
from stream.hub import OVERFLOW, hub
from stream.models import CountChange
from stream.services import change_message


class EventStreamRenderer(BaseRenderer):
    """Lets a client that asks for text/event-stream (as EventSource does) through content negotiation; the
    stream itself is written by the view, and an error body is the usual JSON."""

    media_type = "text/event-stream"
    format = "event-stream"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)


class NotUnderAsgi(APIException):
    status_code = 503
    default_detail = (
        "The stream is served by the ASGI server (`make run`, `make serve`); this process is a WSGI worker, which "
        "one stream would hold for as long as it is open."
    )
    default_code = "not_asgi"


STREAM_EXAMPLE = (
    "retry: 3000\n\n"
    'event: snapshot\nid: 41\ndata: {"id": 41, "space_id": 1, "count": 4, "timestamp": "2026-12-01T09:00:00.000Z"}\n\n'
    'event: count\nid: 42\ndata: {"id": 42, "space_id": 1, "count": 5, "timestamp": "2026-12-01T09:00:02.125Z"}\n\n'
    ": keep-alive\n\n"
)


class StreamApi(APIView):
    """GET: a snapshot of each space's count, then an event each time one changes (or, with Last-Event-ID, what
    was missed since that event, while it is retained)."""

    permission_classes = [IsStaffOrReadOnly]
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        operation_id="stream",
        parameters=[
            OpenApiParameter(
                "spaces",
                str,
                pattern=r"^[0-9]{1,18}(,[0-9]{1,18})*$",
                description="Space ids separated by commas (at most 100); without it, every space.",
                examples=[OpenApiExample("Two spaces", value="1,2")],
            ),
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                description="The id of the last event received: replay what came after it (a browser's EventSource "
                "sends it when it reconnects).",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Server-Sent Events: `snapshot` (one per space on connect), `count` (a space's current "
                "count changed), `dropped` (the client read too slowly and is disconnected); a `: keep-alive` "
                "comment every 15 seconds. Each event's data is JSON: id, space_id, count, timestamp.",
                examples=[OpenApiExample("A snapshot, a change, a keep-alive", value=STREAM_EXAMPLE)],
            ),
            **errors(400, 401, 403, 404, 503),
        },
    )
    def get(self, request):
        if not isinstance(request._request, ASGIRequest):
            raise NotUnderAsgi
        check_query_params(request.query_params, ["spaces"])
        raw = request.query_params.get("spaces")
        spaces = None if raw is None else frozenset(space_ids_param(raw))
        if spaces is not None:
            missing = spaces - set(Space.objects.filter(pk__in=spaces).values_list("pk", flat=True))
            if missing:
                raise NotFound(f"No space has id {min(missing)}.")
        # Django closes a request's database connection when its response ends, which a stream's does not: an
        # open stream would hold a connection (PostgreSQL allows 100) for nothing. What the stream reads, it
        # reads on connections of its own (_first_events).
        connection.close()
        response = StreamingHttpResponse(
            _events(spaces, request.headers.get("Last-Event-ID")), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return response


def _sse(event: str, message: dict) -> str:
    return f"event: {event}\nid: {message['id']}\ndata: {json.dumps(message)}\n\n"


async def _events(spaces: frozenset[int] | None, last_event_id: str | None):
    client = await hub.subscribe(spaces)  # before reading what to send first: nothing falls in between
    metrics.stream_client_connected()
    try:
        first, replayed = await sync_to_async(_first_events, thread_sensitive=False)(spaces, last_event_id)
        yield "retry: 3000\n\n"
        for event, message in first:
            yield _sse(event, message)
        while True:
            try:
                message = await asyncio.wait_for(client.queue.get(), settings.STREAM_HEARTBEAT.total_seconds())
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if message is OVERFLOW:
                detail = "This client fell too far behind and is disconnected; reconnect with Last-Event-ID."
                yield f"event: dropped\ndata: {json.dumps({'detail': detail})}\n\n"
                return
            if message["id"] not in replayed:
                yield _sse("count", message)
    finally:
        hub.unsubscribe(client)
        metrics.stream_client_disconnected()


def _first_events(spaces: frozenset[int] | None, last_event_id: str | None) -> tuple[list, set[int]]:
    """What a client gets first: what it missed since `last_event_id` when all of it is still retained, else a
    snapshot of every space it asked for; and the ids of the changes replayed (the queue may hold them too)."""
    try:
        retained = CountChange.objects.aggregate(oldest=Min("id"), newest=Max("id"))
        oldest, newest = retained["oldest"], retained["newest"]
        last = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
        if last is not None and oldest is not None and oldest - 1 <= last <= newest:
            changes = CountChange.objects.filter(id__gt=last).order_by("id")
            if spaces is not None:
                changes = changes.filter(space_id__in=spaces)
            replay = [("count", change_message(change)) for change in changes]
            return replay, {message["id"] for _, message in replay}
        now = timezone.now()
        counts = space_list_with_counts(at=now)
        if spaces is not None:
            counts = counts.filter(pk__in=spaces)
        stamp = format_instant(now)
        snapshot = [
            ("snapshot", {"id": newest or 0, "space_id": pk, "count": count, "timestamp": stamp})
            for pk, count in counts.order_by("pk").values_list("pk", "count")
        ]
        return snapshot, set()
    finally:
        close_old_connections()
