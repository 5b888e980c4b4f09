"""HTTP for reading counts."""

from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import InstantField
from occupancy.selectors import space_count_at


class SpaceCountApi(APIView):
    """How many people were in a space at `ts` (default: now), and whether that count is settled."""

    class InputSerializer(serializers.Serializer):  # other query parameters (cache busters) are ignored
        ts = InstantField(naive_is_utc=True, required=False)

    class OutputSerializer(serializers.Serializer):
        space_id = serializers.IntegerField()
        ts = InstantField(source="at")
        count = serializers.IntegerField()
        settled = serializers.BooleanField()

    def get(self, request, space_id: str):
        query = self.InputSerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        now = timezone.now()
        result = space_count_at(space=int(space_id), at=query.validated_data.get("ts", now), now=now)
        return Response(self.OutputSerializer(result).data)
