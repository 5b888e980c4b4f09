"""HTTP for the layout: spaces (with their current counts) and doorways."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import (
    Conflict,
    IdField,
    LocalTimeField,
    NameField,
    StrictSerializer,
    TimeZoneField,
    instant_param,
    validated_input,
)
from config.openapi import errors
from config.paging import PAGING_PARAMETERS, page_of, page_request, paged_response
from config.permissions import IsStaffOrReadOnly
from dpu.models import SERIAL_MAX
from occupancy.selectors import space_get_with_count, space_list_page
from occupancy.selectors.counts import SPACE_KEY
from spaces.models import Space
from spaces.selectors import DOORWAY_KEY, doorway_get, doorway_list, space_get
from spaces.services import (
    LayoutInUse,
    doorway_create,
    doorway_delete,
    doorway_update,
    space_create,
    space_delete,
    space_update,
)


@extend_schema_serializer(component_name="Space")
class SpaceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    allow_negative = serializers.BooleanField()
    time_zone = serializers.CharField()
    capacity = serializers.IntegerField(allow_null=True)
    daily_reset = LocalTimeField(allow_null=True)
    count = serializers.IntegerField(default=0)


@extend_schema_serializer(component_name="SpaceSettings")
class SpaceSettingsSerializer(StrictSerializer):
    """What a space's owner sets: everything but its id and count."""

    name = NameField(max_length=200)
    allow_negative = serializers.BooleanField(default=False)
    time_zone = TimeZoneField(default="UTC")
    capacity = serializers.IntegerField(min_value=1, max_value=2**31 - 1, allow_null=True, default=None)
    daily_reset = LocalTimeField(allow_null=True, default=None)


SPACE_A = {
    "id": 1,
    "name": "A",
    "allow_negative": False,
    "time_zone": "UTC",
    "capacity": None,
    "daily_reset": None,
    "count": 4,
}
LOBBY = {"name": "Lobby", "time_zone": "Europe/Berlin", "capacity": 40}


class SpaceApi(APIView):
    """GET: every space with its count now, or at `ts`. POST (staff): add a space."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(
        operation_id="space_list",
        parameters=[
            OpenApiParameter(
                "ts",
                OpenApiTypes.DATETIME,
                description="The instant of the counts (ISO-8601; without a zone, UTC); default now.",
            ),
            *PAGING_PARAMETERS,
        ],
        responses={
            200: page_of(SpaceOutputSerializer(many=True), "by name"),
            **errors(400, 401, 403),
        },
        examples=[OpenApiExample("Every space", value=[SPACE_A, {**SPACE_A, "id": 2, "name": "B", "count": 9}])],
    )
    def get(self, request):
        at = instant_param(request.query_params, "ts", naive_is_utc=True)
        result = space_list_page(at=at, page=page_request(request.query_params, shape=SPACE_KEY))
        return paged_response(request, SpaceOutputSerializer(result.rows, many=True).data, page=result)

    @extend_schema(
        operation_id="space_create",
        request=SpaceSettingsSerializer,
        responses={201: SpaceOutputSerializer, **errors(400, 401, 403, 409)},
        examples=[
            OpenApiExample("A lobby", value=LOBBY, request_only=True),
            OpenApiExample(
                "The lobby",
                value={**SPACE_A, **LOBBY, "id": 3, "count": 0},
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request):
        data = validated_input(SpaceSettingsSerializer, request.data)
        space = space_create(**data)
        return Response(SpaceOutputSerializer(space).data, status=status.HTTP_201_CREATED)


class SpaceDetailApi(APIView):
    """GET: one space with its count now. PATCH (staff): change its settings; a change to `allow_negative`,
    `time_zone` or `daily_reset` recalculates its whole history before the answer. DELETE (staff): remove a space
    nothing depends on (409 when events or resets counted it, or a doorway leads into it)."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(
        operation_id="space_retrieve",
        responses={200: SpaceOutputSerializer, **errors(401, 403, 404)},
        examples=[OpenApiExample("Space A", value=SPACE_A)],
    )
    def get(self, request, space_id: str):
        return Response(SpaceOutputSerializer(space_get_with_count(space_id=int(space_id))).data)

    @extend_schema(
        operation_id="space_update",
        request=SpaceSettingsSerializer(partial=True),
        responses={200: SpaceOutputSerializer, **errors(400, 401, 403, 404, 409)},
        examples=[
            OpenApiExample(
                "Local days in Berlin", value={"time_zone": "Europe/Berlin", "capacity": 25, "daily_reset": "04:00"}
            )
        ],
    )
    def patch(self, request, space_id: str):
        space = space_get(space_id=int(space_id))
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": "The body must be a JSON object."})
        serializer = SpaceSettingsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        space_update(space=space, **serializer.validated_data)
        return Response(SpaceOutputSerializer(space_get_with_count(space_id=space.pk)).data)

    @extend_schema(
        operation_id="space_destroy",
        request=None,
        responses={204: None, **errors(401, 403, 404, 409)},
        examples=[
            OpenApiExample(
                "A space with history",
                value={
                    "detail": "Space 1 ('A') has counted events (its history depends on it); it cannot be deleted. "
                    "Rename it instead, or move its DPUs to other doorways to stop counting it."
                },
                response_only=True,
                status_codes=["409"],
            )
        ],
    )
    def delete(self, request, space_id: str):
        space = space_get(space_id=int(space_id))
        try:
            space_delete(space=space)
        except LayoutInUse as exc:
            raise Conflict(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


# Two different sides, so not outside twice either: uniqueItems states both rules (doorway_create checks them).
@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "integer", "minimum": 1, "maximum": SERIAL_MAX, "nullable": True, "example": 3},
        "minItems": 2,
        "maxItems": 2,
        "uniqueItems": True,
    }
)
class SidesField(serializers.ListField):
    """A doorway's two sides: each a space id, or null for outside."""

    def __init__(self, **kwargs):
        child = IdField(queryset=Space.objects.all(), allow_null=True)
        super().__init__(child=child, min_length=2, max_length=2, **kwargs)


class DoorwayApi(APIView):
    """GET: every doorway and the two sides it joins. POST (staff): add a doorway."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema_serializer(component_name="NewDoorway")
    class InputSerializer(StrictSerializer):
        name = NameField(max_length=200)
        sides = SidesField(help_text="[space id or null, space id or null]; null is outside.")

    @extend_schema_serializer(component_name="Doorway")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        sides = serializers.ListField(child=serializers.IntegerField(allow_null=True))

    @extend_schema(
        operation_id="doorway_list",
        parameters=PAGING_PARAMETERS,
        responses={
            200: page_of(OutputSerializer(many=True), "by name"),
            **errors(400, 401, 403),
        },
        examples=[
            OpenApiExample(
                "The sample building",
                value=[{"id": 1, "name": "X", "sides": [None, 1]}, {"id": 2, "name": "Z", "sides": [2, 1]}],
            )
        ],
    )
    def get(self, request):
        result = doorway_list(page=page_request(request.query_params, shape=DOORWAY_KEY))
        return paged_response(request, self.OutputSerializer(result.rows, many=True).data, page=result)

    @extend_schema(
        operation_id="doorway_create",
        request=InputSerializer,
        responses={201: OutputSerializer, **errors(400, 401, 403)},
        examples=[OpenApiExample("From outside into the lobby", value={"name": "Lobby door", "sides": [None, 3]})],
    )
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        side_a, side_b = data["sides"]
        doorway = doorway_create(name=data["name"], side_a=side_a, side_b=side_b)
        return Response(self.OutputSerializer(doorway).data, status=status.HTTP_201_CREATED)


DOOR_X = {"id": 1, "name": "X", "sides": [None, 1]}


class DoorwayDetailApi(APIView):
    """GET: one doorway and the two sides it joins. PATCH (staff): rename it, or change its sides while no DPU has
    been assigned to it (409 after). DELETE (staff): remove it while no DPU has been assigned to it (409 after)."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema_serializer(component_name="DoorwayChange")
    class InputSerializer(StrictSerializer):
        name = NameField(max_length=200, required=False)
        sides = SidesField(
            required=False,
            help_text="[space id or null, space id or null]; null is outside. Fixed once a DPU was assigned.",
        )

    @extend_schema(
        operation_id="doorway_retrieve",
        responses={200: DoorwayApi.OutputSerializer, **errors(401, 403, 404)},
        examples=[OpenApiExample("Doorway X", value=DOOR_X)],
    )
    def get(self, request, doorway_id: str):
        return Response(DoorwayApi.OutputSerializer(doorway_get(doorway_id=int(doorway_id))).data)

    @extend_schema(
        operation_id="doorway_update",
        request=InputSerializer,
        responses={200: DoorwayApi.OutputSerializer, **errors(400, 401, 403, 404, 409)},
        examples=[
            OpenApiExample("A new name", value={"name": "Main entrance"}, request_only=True),
            OpenApiExample("Renamed", value={**DOOR_X, "name": "Main entrance"}, response_only=True),
            OpenApiExample(
                "Sides of a doorway with a DPU",
                value={
                    "detail": "Doorway 1 ('X') has DPU assignments, so its sides are history: changing them would "
                    "reinterpret the events counted through it. Create a new doorway with these sides and move the "
                    "DPU to it instead."
                },
                response_only=True,
                status_codes=["409"],
            ),
        ],
    )
    def patch(self, request, doorway_id: str):
        doorway = doorway_get(doorway_id=int(doorway_id))
        changes = validated_input(self.InputSerializer, request.data)
        if "sides" in changes:
            changes["side_a"], changes["side_b"] = changes.pop("sides")
        try:
            doorway = doorway_update(doorway=doorway, **changes)
        except LayoutInUse as exc:
            raise Conflict(str(exc)) from None
        return Response(DoorwayApi.OutputSerializer(doorway).data)

    @extend_schema(
        operation_id="doorway_destroy",
        request=None,
        responses={204: None, **errors(401, 403, 404, 409)},
        examples=[
            OpenApiExample(
                "A doorway with a DPU",
                value={
                    "detail": "Doorway 1 ('X') has DPU assignments (DPU 283): the history of their events depends on "
                    "it, so it cannot be deleted. Rename it instead; to stop counting through it, move the DPU to "
                    "another doorway."
                },
                response_only=True,
                status_codes=["409"],
            )
        ],
    )
    def delete(self, request, doorway_id: str):
        doorway = doorway_get(doorway_id=int(doorway_id))
        try:
            doorway_delete(doorway=doorway)
        except LayoutInUse as exc:
            raise Conflict(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
