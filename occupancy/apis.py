"""HTTP for reading counts."""

from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import format_instant, instant_param
from occupancy.selectors import space_count_at


class SpaceCountApi(APIView):
    """How many people were in a space at `ts` (default: now), and whether that count is settled.

    The busiest read: no DRF serializers. One takes longer to build per request (it deep-copies its fields) than
    the indexed lookup behind it; `ts` is read by the same parse_instant that InstantField uses, with the same
    400 naming `ts`, and other query parameters (cache busters) are ignored.
    """

    def get(self, request, space_id: str):
        now = timezone.now()
        at = instant_param(request.query_params, "ts", naive_is_utc=True)
        result = space_count_at(space=int(space_id), at=now if at is None else at, now=now)
        return Response(
            {
                "space_id": result.space_id,
                "ts": format_instant(result.at),
                "count": result.count,
                "settled": result.settled,
            }
        )
