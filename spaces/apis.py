"""HTTP for the layout: spaces (with their current counts) and doorways."""

from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import (
    IdField,
    LocalTimeField,
    StrictSerializer,
    TimeZoneField,
    instant_param,
    validated_input,
)
from config.permissions import IsStaffOrReadOnly
from occupancy.selectors import space_get_with_count, space_list_with_counts
from spaces.models import Space
from spaces.selectors import doorway_list, space_get
from spaces.services import doorway_create, space_create, space_update


class SpaceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    allow_negative = serializers.BooleanField()
    time_zone = serializers.CharField()
    capacity = serializers.IntegerField(allow_null=True)
    daily_reset = LocalTimeField(allow_null=True)
    count = serializers.IntegerField(default=0)


class SpaceSettingsSerializer(StrictSerializer):
    """What a space's owner sets: everything but its id and count."""

    name = serializers.CharField(max_length=200)
    allow_negative = serializers.BooleanField(default=False)
    time_zone = TimeZoneField(default="UTC")
    capacity = serializers.IntegerField(min_value=1, max_value=2**31 - 1, allow_null=True, default=None)
    daily_reset = LocalTimeField(allow_null=True, default=None)


class SpaceApi(APIView):
    """GET: every space with its count now, or at `ts`. POST (staff): add a space."""

    permission_classes = [IsStaffOrReadOnly]

    def get(self, request):
        at = instant_param(request.query_params, "ts", naive_is_utc=True)
        return Response(SpaceOutputSerializer(space_list_with_counts(at=at), many=True).data)

    def post(self, request):
        data = validated_input(SpaceSettingsSerializer, request.data)
        space = space_create(**data)
        return Response(SpaceOutputSerializer(space).data, status=status.HTTP_201_CREATED)


class SpaceDetailApi(APIView):
    """GET: one space with its count now. PATCH (staff): change its settings; a change to `allow_negative`,
    `time_zone` or `daily_reset` recalculates its whole history before the answer."""

    permission_classes = [IsStaffOrReadOnly]

    def get(self, request, space_id: str):
        return Response(SpaceOutputSerializer(space_get_with_count(space_id=int(space_id))).data)

    def patch(self, request, space_id: str):
        space = space_get(space_id=int(space_id))
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": "The body must be a JSON object."})
        serializer = SpaceSettingsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        space_update(space=space, **serializer.validated_data)
        return Response(SpaceOutputSerializer(space_get_with_count(space_id=space.pk)).data)


class DoorwayApi(APIView):
    """GET: every doorway and the two sides it joins. POST (staff): add a doorway."""

    permission_classes = [IsStaffOrReadOnly]

    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=200)
        sides = serializers.ListField(
            child=IdField(queryset=Space.objects.all(), allow_null=True),
            min_length=2,
            max_length=2,
            help_text="[space id or null, space id or null]; null is outside.",
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        sides = serializers.ListField(child=serializers.IntegerField(allow_null=True))

    def get(self, request):
        return Response(self.OutputSerializer(doorway_list(), many=True).data)

    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        side_a, side_b = data["sides"]
        doorway = doorway_create(name=data["name"], side_a=side_a, side_b=side_b)
        return Response(self.OutputSerializer(doorway).data, status=status.HTTP_201_CREATED)
