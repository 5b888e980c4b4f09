"""HTTP for DPUs: registering them, moving them between doorways, and the events they post."""

from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import (
    DirectionField,
    IdField,
    InstantField,
    RequestRejected,
    SerialField,
    StrictSerializer,
    printable,
    validated_input,
)
from config.permissions import CanPostEvents, IsStaffOrReadOnly
from dpu.models import EARLIEST_EVENT, MAX_CLOCK_SKEW
from dpu.selectors import assignment_list, dpu_get, dpu_list
from dpu.services import EventIn, EventRejected, assignment_move, dpu_create, event_ingest
from spaces.models import Doorway, Space

MAX_BATCH = 10_000


# The fields of an event, validated one by one. A Serializer per item would say the same but costs more than the
# rest of ingest together (it deep-copies its fields each time), and batches hold up to 10,000 items.
EVENT_FIELDS = {"dpu_id": SerialField(), "timestamp": InstantField(), "direction": DirectionField()}


class ItemInvalid(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


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
    if data["timestamp"] < EARLIEST_EVENT:
        raise ItemInvalid("timestamp", "is before 2000-01-01; check the DPU's clock.")
    if data["timestamp"] > now + MAX_CLOCK_SKEW:
        raise ItemInvalid("timestamp", "is more than 5 minutes in the future; check the DPU's clock.")
    return EventIn(serial=data["dpu_id"], timestamp=data["timestamp"], direction=data["direction"])


class EventIngestApi(APIView):
    """POST one event, or a JSON array of up to 10,000: stored all or nothing, duplicates once."""

    permission_classes = [CanPostEvents]

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
                raise _item_error(index, exc.field, exc.message) from None
            if own_serial is not None and event.serial != own_serial:
                raise PermissionDenied(
                    f"Item {index}: this token belongs to DPU {own_serial} and may post its events only, not those "
                    f"of DPU {event.serial}. Nothing in this batch was stored."
                )
            events.append(event)
        try:
            result = event_ingest(events=events, now=now)
        except EventRejected as exc:
            raise _item_error(exc.index, exc.field, exc.message) from None
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
        }
    )


class DpuOutputSerializer(serializers.Serializer):
    serial = serializers.IntegerField()


class DpuApi(APIView):
    """GET: every DPU. POST (staff): register a DPU by its serial."""

    permission_classes = [IsStaffOrReadOnly]

    class InputSerializer(StrictSerializer):
        serial = SerialField()

    def get(self, request):
        return Response(DpuOutputSerializer(dpu_list(), many=True).data)

    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        dpu, token = dpu_create(serial=data["serial"])
        # The token is shown this once: only its hash is kept.
        return Response({**DpuOutputSerializer(dpu).data, "token": token}, status=status.HTTP_201_CREATED)


class AssignmentApi(APIView):
    """GET: a DPU's assignments. POST (staff): move the DPU to a doorway from `valid_from` on."""

    permission_classes = [IsStaffOrReadOnly]

    class InputSerializer(StrictSerializer):
        doorway = IdField(queryset=Doorway.objects.all())
        enters = IdField(queryset=Space.objects.all(), allow_null=True)
        valid_from = InstantField()

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        dpu = serializers.IntegerField(source="dpu.serial")
        doorway = serializers.IntegerField(source="doorway_id")
        enters = serializers.IntegerField(source="enters_id", allow_null=True)
        valid_from = InstantField()
        valid_to = InstantField(allow_null=True)

    def get(self, request, serial: str):
        dpu = dpu_get(serial=int(serial))
        return Response(self.OutputSerializer(assignment_list(dpu=dpu), many=True).data)

    def post(self, request, serial: str):
        dpu = dpu_get(serial=int(serial))
        data = validated_input(self.InputSerializer, request.data)
        assignment = assignment_move(dpu=dpu, **data)
        return Response(self.OutputSerializer(assignment).data, status=status.HTTP_201_CREATED)
