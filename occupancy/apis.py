"""HTTP for reading counts (at an instant, and over time) and for operators' resets."""

import json

from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import (
    InstantField,
    StrictSerializer,
    check_query_params,
    format_instant,
    instant_param,
    time_zone_param,
    validated_input,
)
from config.renderers import CsvRenderer, FormatParamNegotiation, PreRenderedJson, PreRenderedJsonRenderer
from occupancy.calendar import Interval, placed
from occupancy.selectors import SpaceSeries, reset_get, reset_list, space_count_at, space_series
from occupancy.selectors.buckets import MAX_SPACES
from occupancy.services import reset_create, reset_delete
from spaces.selectors import space_get


class SpaceCountApi(APIView):
    """How many people were in a space at `ts` (default: now), and whether that count is settled.

    The busiest read: no DRF serializers. One takes longer to build per request (it deep-copies its fields) than
    the indexed lookup behind it; `ts` is read by the same parse_instant that InstantField uses, with the same
    400 naming `ts`. Any other query parameter but the cache buster `_` is a 400.
    """

    def get(self, request, space_id: str):
        check_query_params(request.query_params, ("ts",))
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


SERIES_PARAMS = ("start", "end", "interval", "tz", "format")


def _series_head(series: SpaceSeries) -> dict:
    return {
        "space_id": series.space_id,
        "time_zone": series.time_zone,
        "start": format_instant(series.start),
        "end": format_instant(series.end),
        "interval": None if series.interval is None else str(series.interval),
    }


def _series_json(series: SpaceSeries) -> str:
    """A series as JSON text: its head, and the buckets as the database wrote them."""
    head = json.dumps(_series_head(series), separators=(",", ":"))
    return f'{head[:-1]},"buckets":{series.buckets_json}}}'


class SeriesApi(APIView):
    """What both counts-over-time endpoints share: their query, CSV as well as JSON, and errors always as JSON."""

    renderer_classes = [PreRenderedJsonRenderer, CsvRenderer]
    content_negotiation_class = FormatParamNegotiation

    def series(self, request, space_ids: list[int], *, allowed: tuple[str, ...]) -> list[SpaceSeries]:
        params = request.query_params
        check_query_params(params, allowed)
        missing = [name for name in ("start", "end") if params.get(name) is None]
        if missing:
            raise ValidationError({name: ["This query parameter is required."] for name in missing})
        start = instant_param(params, "start", keep_naive=True)
        end = instant_param(params, "end", keep_naive=True)
        interval = None
        if params.get("interval") is not None:
            try:
                interval = Interval.parse(params["interval"])
            except ValueError as exc:
                raise ValidationError({"interval": [str(exc)]}) from None
        return space_series(
            space_ids=space_ids, start=start, end=end, interval=interval, zone=time_zone_param(params, "tz")
        )

    def handle_exception(self, exc):
        # An error is JSON whatever format was asked for: a CSV of an error message would read as a report.
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response

    def download(self, request, found: list[SpaceSeries], name: str, *, many: bool) -> Response:
        """JSON as the database wrote the buckets (a list when `many`), or a CSV file of them."""
        if request.accepted_renderer.format == "csv":
            response = Response([{**_series_head(series), "buckets": series.buckets()} for series in found])
            response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
            return response
        texts = [_series_json(series) for series in found]
        return Response(PreRenderedJson(f"[{','.join(texts)}]" if many else texts[0]))


class SpaceCountsApi(SeriesApi):
    """A space's counts over [start, end) in buckets of `interval`, in its time zone or `tz`."""

    def get(self, request, space_id: str):
        found = self.series(request, [int(space_id)], allowed=SERIES_PARAMS)
        return self.download(request, found, f"space-{space_id}-counts", many=False)


class CountsApi(SeriesApi):
    """The same for up to 100 spaces (`spaces=1,2,3`) in one request, in the order asked."""

    def get(self, request):
        space_ids = _space_ids(request.query_params.get("spaces"))
        found = self.series(request, space_ids, allowed=(*SERIES_PARAMS, "spaces"))
        return self.download(request, found, "counts", many=True)


def _space_ids(raw: str | None) -> list[int]:
    if raw is None:
        raise ValidationError({"spaces": ["This query parameter is required: space ids separated by commas, 1,2,3."]})
    parts = [part.strip() for part in raw.split(",")]
    if not all(part.isdigit() and len(part) <= 18 and int(part) > 0 for part in parts):
        raise ValidationError({"spaces": ["must be space ids separated by commas, such as 1,2,3."]})
    if len(parts) > MAX_SPACES:
        raise ValidationError({"spaces": [f"asks for {len(parts)} spaces; at most {MAX_SPACES} at once."]})
    return [int(part) for part in parts]


class ResetOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    space_id = serializers.IntegerField()
    timestamp = InstantField()
    count = serializers.IntegerField()
    created = InstantField()
    created_by = serializers.CharField(source="created_by.username", default=None)


class ResetListApi(APIView):
    """GET: a space's resets, in [start, end) when given. POST (staff): "at this instant there were N people"."""

    class InputSerializer(StrictSerializer):
        timestamp = InstantField()
        count = serializers.IntegerField(min_value=-(2**31), max_value=2**31 - 1)

    def get(self, request, space_id: str):
        params = request.query_params
        check_query_params(params, ("start", "end"))
        space = space_get(space_id=int(space_id))
        start, end = (instant_param(params, name, keep_naive=True) for name in ("start", "end"))
        resets = reset_list(
            space_id=space.pk,
            start=None if start is None else placed(start, space.zone),
            end=None if end is None else placed(end, space.zone),
        )
        return Response(ResetOutputSerializer(resets, many=True).data)

    def post(self, request, space_id: str):
        space = space_get(space_id=int(space_id))
        data = validated_input(self.InputSerializer, request.data)
        reset = reset_create(space=space, timestamp=data["timestamp"], count=data["count"], created_by=request.user)
        return Response(ResetOutputSerializer(reset).data, status=status.HTTP_201_CREATED)


class ResetDetailApi(APIView):
    """DELETE (staff): remove a reset; the space is recalculated from its instant."""

    def delete(self, request, space_id: str, reset_id: str):
        reset_delete(reset=reset_get(space_id=int(space_id), reset_id=int(reset_id)))
        return Response(status=status.HTTP_204_NO_CONTENT)
