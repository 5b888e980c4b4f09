"""HTTP for the layout: spaces (with their current counts) and doorways."""

from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import IdField, StrictSerializer, validated_input
from config.permissions import IsStaffOrReadOnly
from occupancy.selectors import space_list_with_counts
from spaces.models import Space
from spaces.selectors import doorway_list
from spaces.services import doorway_create, space_create


class SpaceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    allow_negative = serializers.BooleanField()
    count = serializers.IntegerField(default=0)


class SpaceApi(APIView):
    """GET: every space with its current count. POST (staff): add a space."""

    permission_classes = [IsStaffOrReadOnly]

    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=200)
        allow_negative = serializers.BooleanField(default=False)

    def get(self, request):
        return Response(SpaceOutputSerializer(space_list_with_counts(), many=True).data)

    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        space = space_create(**data)
        return Response(SpaceOutputSerializer(space).data, status=status.HTTP_201_CREATED)


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
