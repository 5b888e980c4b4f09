"""HTTP for DPUs: registering them, moving them between doorways, and the events they post."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import (
    Conflict,
    DirectionField,
    IdField,
    InstantField,
    RequestRejected,
    SerialField,
    StrictSerializer,
    check_query_params,
    format_instant,
    instant_param,
    printable,
    validated_input,
)
from config.openapi import ERROR, errors
from config.paging import PAGING_PARAMETERS, page_of, page_request, paged_response
from config.paging import PARAMS as PAGING_PARAMS
from config.permissions import CanPostEvents, IsStaffOrReadOnly
from dpu.models import EARLIEST_EVENT, MAX_CLOCK_SKEW, DpuClockRefusal
from dpu.selectors import (
    ASSIGNMENT_KEY,
    DPU_KEY,
    EVENT_KEY,
    STATUSES,
    assignment_get,
    assignment_list,
    dpu_get,
    dpu_health,
    dpu_list,
    event_list,
)
from dpu.services import (
    DpuHasEvents,
    EventArchived,
    EventIn,
    EventRejected,
    assignment_delete,
    assignment_move,
    assignment_update,
    dpu_clock_refusal_record,
    dpu_create,
    dpu_delete,
    dpu_token_rotate,
    event_ingest,
)
from observability import metrics
from spaces.models import Doorway, Space

MAX_BATCH = 10_000


# The fields of an event, validated one by one. A Serializer per item would say the same but costs more than the
# rest of ingest together (it deep-copies its fields each time), and batches hold up to 10,000 items.
EVENT_FIELDS = {"dpu_id": SerialField(), "timestamp": InstantField(), "direction": DirectionField()}


class ItemInvalid(Exception):
    """An item that cannot be an event. `reason` is one of observability.metrics.REFUSAL_REASONS; for a clock
    reason, `serial` and `timestamp` are the item's, so that the refusal can be counted against its DPU."""

    def __init__(self, field: str, message: str, *, reason: str = "invalid", serial=None, timestamp=None):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message
        self.reason, self.serial, self.timestamp = reason, serial, timestamp


def event_from_item(item, *, now) -> EventIn:
    """One posted item (a dict as JSON or CSV gives it) as an EventIn, or ItemInvalid saying what is wrong."""
    if not isinstance(item, dict):
        raise ItemInvalid("item", "must be a JSON object with dpu_id, timestamp and direction.")
    unknown = sorted(set(item) - EVENT_FIELDS.keys())
    if unknown:
        raise ItemInvalid(printable(unknown[0][:60]), "is not a field this endpoint takes.")
    data = {}
    for name, field in EVENT_FIELDS.items():
        if name not in item:
            raise ItemInvalid(name, "This field is required.")
        if item[name] is None:
            raise ItemInvalid(name, "This field may not be null.")
        try:
            data[name] = field.to_internal_value(item[name])
        except ValidationError as exc:
            raise ItemInvalid(name, " ".join(str(m) for m in exc.detail)) from None
    clock = {"serial": data["dpu_id"], "timestamp": data["timestamp"]}
    if data["timestamp"] < EARLIEST_EVENT:
        raise ItemInvalid(
            "timestamp", "is before 2000-01-01; check the DPU's clock.", reason="clock_before_2000", **clock
        )
    if data["timestamp"] > now + MAX_CLOCK_SKEW:
        raise ItemInvalid(
            "timestamp", "is more than 5 minutes in the future; check the DPU's clock.", reason="clock_ahead", **clock
        )
    return EventIn(serial=data["dpu_id"], timestamp=data["timestamp"], direction=data["direction"])


@extend_schema_serializer(component_name="Event")
class EventSchema(serializers.Serializer):
    """An event as the schema tells it; the view validates items with EVENT_FIELDS, not this serializer."""

    dpu_id = SerialField()
    timestamp = InstantField()
    direction = DirectionField()


def event_batch_schema(result, generator, request, public):
    """Schema hook: POST /events needs a body, and a batch holds 1 to MAX_BATCH events. drf-spectacular leaves a
    oneOf body optional and drops a list's bounds inside it, so the schema would allow the empty request, the empty
    batch and the oversized one that the view refuses."""
    result["paths"]["/events"]["post"]["requestBody"]["required"] = True
    batch = result["components"]["schemas"]["EventOrBatchRequest"]["oneOf"][1]
    batch.update(minItems=1, maxItems=MAX_BATCH)
    return result


class IngestResultSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Items in the request.")
    created = serializers.IntegerField(help_text="Events stored now.")
    duplicates = serializers.IntegerField(help_text="Exact repeats of events stored before or in this batch.")


# The shared error body, plus where in the batch the first refused item is.
BATCH_ERROR = {
    **ERROR,
    "properties": {
        **ERROR["properties"],
        "index": {"type": "integer", "description": "The item that was refused, from 0."},
        "field": {"type": "string", "description": "Its field that was wrong."},
        "message": {"type": "string", "description": "What was wrong with it."},
    },
    "example": {
        "detail": "Item 1: direction: must be 1 (towards the side the DPU faces) or -1 (away from it). Nothing in "
        "this batch was stored.",
        "index": 1,
        "field": "direction",
        "message": "must be 1 (towards the side the DPU faces) or -1 (away from it).",
        "errors": {"direction": ["must be 1 (towards the side the DPU faces) or -1 (away from it)."]},
    },
}
TWO_EVENTS = [
    {"dpu_id": 283, "timestamp": "2018-03-03T09:00:00.000Z", "direction": 1},
    {"dpu_id": 283, "timestamp": "2018-03-03T09:05:12.250Z", "direction": -1},
]


class EventIngestApi(APIView):
    """POST one event, or a JSON array of up to 10,000: stored all or nothing, duplicates once."""

    permission_classes = [CanPostEvents]

    @extend_schema(
        operation_id="events_create",
        request=PolymorphicProxySerializer(
            component_name="EventOrBatch",
            serializers=[EventSchema, EventSchema(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
        responses={
            201: OpenApiResponse(IngestResultSerializer, description="At least one event was new."),
            200: OpenApiResponse(IngestResultSerializer, description="Every event was stored before."),
            400: OpenApiResponse(BATCH_ERROR, description="An item, or the batch, is not valid: nothing stored."),
            409: OpenApiResponse(
                BATCH_ERROR, description="An item falls in an archived month, which is read-only: nothing stored."
            ),
            **errors(401, 403, 413),
        },
        examples=[
            OpenApiExample("Two events", value=TWO_EVENTS, request_only=True),
            OpenApiExample(
                "Stored", value={"received": 2, "created": 2, "duplicates": 0}, response_only=True, status_codes=["201"]
            ),
            OpenApiExample(
                "Sent again",
                value={"received": 2, "created": 0, "duplicates": 2},
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def post(self, request):
        own_serial = request.auth.serial if getattr(request.user, "is_dpu", False) else None
        items = request.data if isinstance(request.data, list) else [request.data]
        if not items:
            raise ValidationError({"detail": "The batch is empty: send one event object or a non-empty array."})
        if len(items) > MAX_BATCH:
            raise ValidationError({"detail": f"A batch holds at most {MAX_BATCH} events; this one has {len(items)}."})
        now = timezone.now()
        events = []
        for index, item in enumerate(items):
            try:
                event = event_from_item(item, now=now)
            except ItemInvalid as exc:
                metrics.item_refused(reason=exc.reason)
                # Counted against the DPU (when registered), so that a broken clock shows although nothing is
                # stored; a DPU's token cannot make another DPU's clock look broken.
                if exc.reason != "invalid" and own_serial in (None, exc.serial):
                    dpu_clock_refusal_record(serial=exc.serial, reason=exc.reason, timestamp=exc.timestamp, now=now)
                raise _item_error(index, exc.field, exc.message) from None
            if own_serial is not None and event.serial != own_serial:
                raise PermissionDenied(
                    f"Item {index}: this token belongs to DPU {own_serial} and may post its events only, not those "
                    f"of DPU {event.serial}. Nothing in this batch was stored."
                )
            events.append(event)
        try:
            result = event_ingest(events=events, now=now)
        except EventArchived as exc:
            metrics.item_refused(reason="archived")
            raise Conflict(f"Item {exc.index}: {exc.field}: {exc.message} Nothing in this batch was stored.") from None
        except EventRejected as exc:
            metrics.item_refused(reason="unknown_dpu")
            raise _item_error(exc.index, exc.field, exc.message) from None
        metrics.events_ingested(
            received=result.received,
            created=result.created,
            duplicates=result.duplicates,
            lateness_seconds=result.lateness_seconds,
        )
        body = {"received": result.received, "created": result.created, "duplicates": result.duplicates}
        # A DPU re-sending a batch that fully arrived before is told it is done, not that something was made.
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


def _item_error(index: int, field: str, message: str) -> RequestRejected:
    return RequestRejected(
        {
            "detail": f"Item {index}: {field}: {message} Nothing in this batch was stored.",
            "index": index,
            "field": field,
            "message": message,
            "errors": {field: [message]},  # the shape of every other validation error
        }
    )


@extend_schema_serializer(component_name="NewDpuWithToken")
class DpuCreatedSerializer(serializers.Serializer):
    serial = serializers.IntegerField()
    token = serializers.CharField(help_text="The DPU's token: shown this once, only its hash is kept.")


REFUSAL_REASONS = [reason.value for reason in DpuClockRefusal.Reason]


@extend_schema_serializer(component_name="Dpu")
class DpuOutputSerializer(serializers.Serializer):
    """A DPU and its health (dpu.selectors.DpuHealth)."""

    serial = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=STATUSES,
        help_text="ok; silent: nothing stored for longer than DPU_SILENT_AFTER (default 24 hours); unassigned: no "
        "assignment covers now; never_seen: it never sent an event.",
    )
    assigned = serializers.BooleanField(help_text="Whether an assignment covers now.")
    last_event_at = InstantField(allow_null=True, help_text="The latest timestamp of its events; null before any.")
    last_received_at = InstantField(allow_null=True, help_text="When its latest new event was stored; null before any.")
    events_24h = serializers.IntegerField(
        help_text="New events stored in the current hour and the 24 before it (UTC hours); repeats not counted."
    )
    lateness_p95_s = serializers.IntegerField(
        allow_null=True,
        help_text="95th percentile of received_at - timestamp over those events, in seconds, rounded up to a power "
        "of 2 (1, 2, 4, …): at most twice the true value, never less. Null when there are none.",
    )
    refused_clock_ahead = serializers.IntegerField(
        help_text="Items refused for a timestamp more than 5 minutes in the future (not stored)."
    )
    refused_clock_before_2000 = serializers.IntegerField(
        help_text="Items refused for a timestamp before 2000 (not stored)."
    )
    last_refused_at = InstantField(
        allow_null=True, source="last_refusal.last_refused_at", help_text="When its latest item was refused."
    )
    last_refused_timestamp = InstantField(
        allow_null=True, source="last_refusal.last_timestamp", help_text="The timestamp that item carried."
    )
    last_refused_reason = serializers.ChoiceField(
        choices=REFUSAL_REASONS, allow_null=True, source="last_refusal.reason", help_text="Why it was refused."
    )


DPU_283 = {
    "serial": 283,
    "status": "ok",
    "assigned": True,
    "last_event_at": "2026-12-01T10:19:50.112Z",
    "last_received_at": "2026-12-01T10:19:52.637Z",
    "events_24h": 1841,
    "lateness_p95_s": 4,
    "refused_clock_ahead": 0,
    "refused_clock_before_2000": 0,
    "last_refused_at": None,
    "last_refused_timestamp": None,
    "last_refused_reason": None,
}
DPU_512 = {
    "serial": 512,
    "status": "silent",
    "assigned": True,
    "last_event_at": "2026-11-29T17:02:11.480Z",
    "last_received_at": "2026-11-29T17:02:12.003Z",
    "events_24h": 0,
    "lateness_p95_s": None,
    "refused_clock_ahead": 0,
    "refused_clock_before_2000": 212,
    "last_refused_at": "2026-12-01T10:18:40.950Z",
    "last_refused_timestamp": "1970-01-01T00:03:12.000Z",
    "last_refused_reason": "clock_before_2000",
}


class DpuApi(APIView):
    """GET: every DPU. POST (staff): register a DPU by its serial."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema_serializer(component_name="NewDpu")
    class InputSerializer(StrictSerializer):
        serial = SerialField()

    @extend_schema(
        operation_id="dpu_list",
        parameters=PAGING_PARAMETERS,
        responses={
            200: page_of(DpuOutputSerializer(many=True), "by serial"),
            **errors(400, 401, 403),
        },
        examples=[OpenApiExample("Two DPUs", value=[DPU_283, DPU_512])],
    )
    def get(self, request):
        result = dpu_list(page=page_request(request.query_params, shape=DPU_KEY))
        health = dpu_health(dpus=result.rows, now=timezone.now())
        return paged_response(request, DpuOutputSerializer(health, many=True).data, page=result)

    @extend_schema(
        operation_id="dpu_create",
        request=InputSerializer,
        responses={201: DpuCreatedSerializer, **errors(400, 401, 403, 409)},
        examples=[
            OpenApiExample("DPU 512", value={"serial": 512}, request_only=True),
            OpenApiExample(
                "Its token, shown once",
                value={"serial": 512, "token": "dpu_Qm3…"},
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        dpu, token = dpu_create(serial=data["serial"])
        # The token is shown this once: only its hash is kept.
        return Response({"serial": dpu.serial, "token": token}, status=status.HTTP_201_CREATED)


MOVED = {"id": 3, "dpu": 512, "doorway": 3, "enters": 3, "valid_from": "2018-03-01T00:00:00.000Z", "valid_to": None}


class AssignmentApi(APIView):
    """GET: a DPU's assignments. POST (staff): move the DPU to a doorway from `valid_from` on."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema_serializer(component_name="NewAssignment")
    class InputSerializer(StrictSerializer):
        doorway = IdField(queryset=Doorway.objects.all())
        enters = IdField(queryset=Space.objects.all(), allow_null=True)
        valid_from = InstantField()

    @extend_schema_serializer(component_name="Assignment")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        dpu = serializers.IntegerField(source="dpu.serial")
        doorway = serializers.IntegerField(source="doorway_id")
        enters = serializers.IntegerField(source="enters_id", allow_null=True)
        valid_from = InstantField()
        valid_to = InstantField(allow_null=True)

    @extend_schema(
        operation_id="dpu_assignments_list",
        parameters=PAGING_PARAMETERS,
        responses={
            200: page_of(OutputSerializer(many=True), "oldest first"),
            **errors(400, 401, 403, 404),
        },
        examples=[OpenApiExample("DPU 512", value=[MOVED])],
    )
    def get(self, request, serial: str):
        dpu = dpu_get(serial=int(serial))
        result = assignment_list(dpu=dpu, page=page_request(request.query_params, shape=ASSIGNMENT_KEY))
        return paged_response(request, self.OutputSerializer(result.rows, many=True).data, page=result)

    @extend_schema(
        operation_id="dpu_assignments_create",
        request=InputSerializer,
        responses={201: OutputSerializer, **errors(400, 401, 403, 404, 409)},
        examples=[
            OpenApiExample(
                "To the lobby door",
                value={"doorway": 3, "enters": 3, "valid_from": "2018-03-01T00:00:00Z"},
                request_only=True,
            ),
            OpenApiExample("Moved", value=MOVED, response_only=True, status_codes=["201"]),
        ],
    )
    def post(self, request, serial: str):
        dpu = dpu_get(serial=int(serial))
        data = validated_input(self.InputSerializer, request.data)
        assignment = assignment_move(dpu=dpu, **data)
        return Response(self.OutputSerializer(assignment).data, status=status.HTTP_201_CREATED)


@extend_schema_serializer(component_name="DpuDetail")
class DpuDetailSerializer(DpuOutputSerializer):
    assignment = AssignmentApi.OutputSerializer(
        allow_null=True, help_text="Where the DPU hangs now; null when nowhere."
    )


class DpuDetailApi(APIView):
    """GET: one DPU and where it hangs now. DELETE (staff): remove a DPU that never sent an event."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(
        operation_id="dpu_retrieve",
        responses={200: DpuDetailSerializer, **errors(401, 403, 404)},
        examples=[OpenApiExample("DPU 512", value={**DPU_512, "assignment": MOVED})],
    )
    def get(self, request, serial: str):
        health = dpu_health(dpus=[dpu_get(serial=int(serial))], now=timezone.now())[0]
        return Response(DpuDetailSerializer(health).data)

    @extend_schema(operation_id="dpu_destroy", responses={204: None, **errors(401, 403, 404, 409)})
    def delete(self, request, serial: str):
        try:
            dpu_delete(dpu=dpu_get(serial=int(serial)))
        except DpuHasEvents as exc:
            raise Conflict(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class DpuTokenApi(APIView):
    """POST (staff): give the DPU a new token, shown once; the old one stops working at once."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(
        operation_id="dpu_token_rotate",
        request=None,
        responses={201: DpuCreatedSerializer, **errors(401, 403, 404)},
        examples=[OpenApiExample("The new token, shown once", value={"serial": 512, "token": "dpu_Qm3…"})],
    )
    def post(self, request, serial: str):
        dpu = dpu_get(serial=int(serial))
        token = dpu_token_rotate(dpu=dpu)
        # Shown this once: only its hash is kept.
        return Response({"serial": dpu.serial, "token": token}, status=status.HTTP_201_CREATED)


class AssignmentDetailApi(APIView):
    """PATCH (staff): correct an assignment in place. DELETE (staff): remove it. Either recalculates the counts of
    every space involved, as the admin's corrections do."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema_serializer(component_name="AssignmentCorrection")
    class InputSerializer(StrictSerializer):
        doorway = IdField(queryset=Doorway.objects.all())
        enters = IdField(queryset=Space.objects.all(), allow_null=True)
        valid_from = InstantField()
        valid_to = InstantField(allow_null=True)

    @extend_schema(
        operation_id="dpu_assignments_update",
        request=InputSerializer(partial=True),
        responses={200: AssignmentApi.OutputSerializer, **errors(400, 401, 403, 404, 409)},
        examples=[
            OpenApiExample("Ended", value={"valid_to": "2018-03-02T00:00:00Z"}, request_only=True),
            OpenApiExample(
                "The corrected assignment",
                value={**MOVED, "valid_to": "2018-03-02T00:00:00.000Z"},
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def patch(self, request, serial: str, assignment_id: str):
        assignment = assignment_get(dpu=dpu_get(serial=int(serial)), assignment_id=int(assignment_id))
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": "The body must be a JSON object."})
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = serializer.validated_data
        assignment = assignment_update(
            assignment=assignment,
            doorway=changes.get("doorway", assignment.doorway),
            enters=changes.get("enters", assignment.enters),
            valid_from=changes.get("valid_from", assignment.valid_from),
            valid_to=changes.get("valid_to", assignment.valid_to),
        )
        return Response(AssignmentApi.OutputSerializer(assignment).data)

    @extend_schema(operation_id="dpu_assignments_destroy", responses={204: None, **errors(401, 403, 404)})
    def delete(self, request, serial: str, assignment_id: str):
        assignment_delete(assignment=assignment_get(dpu=dpu_get(serial=int(serial)), assignment_id=int(assignment_id)))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_serializer(component_name="LoggedEvent")
class LoggedEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    dpu_id = serializers.IntegerField(source="dpu.serial", help_text="The DPU's serial.")
    timestamp = InstantField()
    direction = DirectionField()
    received_at = InstantField(help_text="When the service stored it.")


EVENT_LOG_PARAMS = ("start", "end", *PAGING_PARAMS)


class EventLogApi(APIView):
    """GET: the DPU's raw events as received, in timestamp order, a page at a time."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(
        operation_id="dpu_events_list",
        parameters=[
            OpenApiParameter(
                "start",
                OpenApiTypes.DATETIME,
                description="Events at or after this instant (ISO-8601; without a zone, UTC).",
            ),
            OpenApiParameter(
                "end", OpenApiTypes.DATETIME, description="Events before this instant (ISO-8601; without a zone, UTC)."
            ),
            *PAGING_PARAMETERS,
        ],
        responses={
            200: page_of(LoggedEventSerializer(many=True), "oldest first"),
            **errors(400, 401, 403, 404),
        },
        examples=[
            OpenApiExample(
                "Two events",
                value=[
                    {
                        "id": 1,
                        "dpu_id": 283,
                        "timestamp": "2018-02-24T08:45:21.893Z",
                        "direction": 1,
                        "received_at": "2026-12-01T05:50:02.114Z",
                    },
                    {
                        "id": 2,
                        "dpu_id": 283,
                        "timestamp": "2018-02-24T08:46:03.200Z",
                        "direction": -1,
                        "received_at": "2026-12-01T05:50:02.114Z",
                    },
                ],
            )
        ],
    )
    def get(self, request, serial: str):
        params = request.query_params
        check_query_params(params, EVENT_LOG_PARAMS)
        start, end = (instant_param(params, name, naive_is_utc=True) for name in ("start", "end"))
        if start is not None and end is not None and end <= start:
            raise ValidationError({"end": [f"must be after start ({format_instant(start)}); the range is empty."]})
        page = page_request(params, shape=EVENT_KEY)
        result = event_list(dpu=dpu_get(serial=int(serial)), start=start, end=end, page=page)
        return paged_response(request, LoggedEventSerializer(result.rows, many=True).data, page=result)
