"""HTTP for reading counts (at an instant, and over time) and for operators' resets."""

import json

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
)
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
from config.openapi import errors
from config.paging import PAGING_PARAMETERS, page_of, page_request, paged_response
from config.paging import PARAMS as PAGING_PARAMS
from config.renderers import CsvRenderer, FormatParamNegotiation, PreRenderedJson, PreRenderedJsonRenderer
from occupancy.calendar import INTERVAL, Interval, placed
from occupancy.selectors import SpaceSeries, reset_get, reset_list, space_count_at, space_series
from occupancy.selectors.buckets import MAX_SPACES
from occupancy.selectors.resets import RESET_KEY
from occupancy.services import reset_create, reset_delete
from spaces.models import time_zone_names
from spaces.selectors import space_get


@extend_schema_serializer(component_name="Count")
class CountSchema(serializers.Serializer):
    """The count lookup's answer, as the schema tells it (the view writes it without a serializer)."""

    space_id = serializers.IntegerField()
    ts = InstantField()
    count = serializers.IntegerField()
    settled = serializers.BooleanField(help_text="False while a late event or a reset may still change it.")


class SpaceCountApi(APIView):
    """How many people were in a space at `ts` (default: now), and whether that count is settled.

    The busiest read: no DRF serializers. One takes longer to build per request (it deep-copies its fields) than
    the indexed lookup behind it; `ts` is read by the same parse_instant that InstantField uses, with the same
    400 naming `ts`. Any other query parameter but the cache buster `_` is a 400.
    """

    @extend_schema(
        operation_id="space_count",
        parameters=[
            OpenApiParameter(
                "ts",
                OpenApiTypes.DATETIME,
                description="The instant (ISO-8601; without a zone, UTC; a bare date is midnight); default now.",
            )
        ],
        responses={200: CountSchema, **errors(400, 401, 403, 404)},
        examples=[
            OpenApiExample(
                "At 16:08", value={"space_id": 1, "ts": "2018-02-26T16:08:02.170Z", "count": 3, "settled": True}
            )
        ],
    )
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


@extend_schema_serializer(component_name="Bucket")
class BucketSchema(serializers.Serializer):
    """A bucket, as the schema tells it (the database writes the JSON: occupancy.selectors.buckets)."""

    start = InstantField()
    end = InstantField()
    count = serializers.IntegerField(help_text="After everything before `end`.")
    min = serializers.IntegerField()
    max = serializers.IntegerField()
    max_at = InstantField(help_text="The first instant in the bucket at `max`.")
    average = serializers.FloatField(help_text="Time-weighted.")
    entrances = serializers.IntegerField()
    exits = serializers.IntegerField()
    utilization = serializers.FloatField(allow_null=True, help_text="max / capacity; null without a capacity.")
    settled = serializers.BooleanField(help_text="False while anything in the bucket may still change.")


@extend_schema_serializer(component_name="Series")
class SeriesSchema(serializers.Serializer):
    space_id = serializers.IntegerField()
    time_zone = serializers.CharField()
    start = InstantField()
    end = InstantField()
    interval = serializers.CharField(allow_null=True)
    buckets = BucketSchema(many=True)


SERIES_PARAMETERS = [
    OpenApiParameter(
        "start",
        OpenApiTypes.DATETIME,
        required=True,
        description="ISO-8601; without a zone, or a bare date (2018-02-26), local time in `tz`.",
        examples=[OpenApiExample("A day", value="2018-02-26T00:00:00Z")],
    ),
    OpenApiParameter(
        "end",
        OpenApiTypes.DATETIME,
        required=True,
        description="After `start`; read like it.",
        examples=[OpenApiExample("A day", value="2018-02-27T00:00:00Z")],
    ),
    OpenApiParameter(
        "interval",
        str,
        pattern=f"^{INTERVAL.pattern}$",
        description="<N>m, <N>h, <N>d or <N>w (days and weeks are local); without it, one bucket.",
        examples=[OpenApiExample("Six hours", value="6h")],
    ),
    OpenApiParameter(
        "tz", str, enum=sorted(time_zone_names()), description="An IANA time zone name; default the space's own."
    ),
    OpenApiParameter("format", str, enum=["json", "csv"], description="csv: the buckets as a file to download."),
]
SERIES_EXAMPLE = {
    "space_id": 1,
    "time_zone": "UTC",
    "start": "2018-02-26T00:00:00.000Z",
    "end": "2018-02-27T00:00:00.000Z",
    "interval": "6h",
    "buckets": [
        {
            "start": "2018-02-26T18:00:00.000Z",
            "end": "2018-02-27T00:00:00.000Z",
            "count": 11,
            "min": 11,
            "max": 17,
            "max_at": "2018-02-26T22:05:48.147Z",
            "average": 13.225697,
            "entrances": 23,
            "exits": 25,
            "utilization": None,
            "settled": True,
        }
    ],
}


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
        self._answer_json()
        return response

    def options(self, request, *args, **kwargs):
        # So is the description of the endpoint: only buckets have a CSV form.
        response = super().options(request, *args, **kwargs)
        self._answer_json()
        return response

    def _answer_json(self) -> None:
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"

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

    @extend_schema(
        operation_id="space_counts",
        parameters=SERIES_PARAMETERS,
        responses={
            (200, "application/json"): SeriesSchema,
            (200, "text/csv"): OpenApiTypes.STR,
            **errors(400, 401, 403, 404, 409),
        },
        examples=[OpenApiExample("A day in six hours", value=SERIES_EXAMPLE, response_only=True)],
    )
    def get(self, request, space_id: str):
        found = self.series(request, [int(space_id)], allowed=SERIES_PARAMS)
        return self.download(request, found, f"space-{space_id}-counts", many=False)


class CountsApi(SeriesApi):
    """The same for up to 100 spaces (`spaces=1,2,3`) in one request, in the order asked."""

    @extend_schema(
        operation_id="counts",
        parameters=[
            OpenApiParameter(
                "spaces",
                str,
                required=True,
                pattern=rf"^[1-9][0-9]{{0,17}}(,[1-9][0-9]{{0,17}}){{0,{MAX_SPACES - 1}}}$",
                description=f"Space ids separated by commas, up to {MAX_SPACES}.",
                examples=[OpenApiExample("Two spaces", value="2,1")],
            ),
            *SERIES_PARAMETERS,
        ],
        responses={
            (200, "application/json"): SeriesSchema(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
            **errors(400, 401, 403, 404, 409),
        },
        examples=[OpenApiExample("One space's day", value=[SERIES_EXAMPLE], response_only=True)],
    )
    def get(self, request):
        space_ids = space_ids_param(request.query_params.get("spaces"))
        found = self.series(request, space_ids, allowed=(*SERIES_PARAMS, "spaces"))
        return self.download(request, found, "counts", many=True)


def space_ids_param(raw: str | None) -> list[int]:
    """The `spaces` query parameter: space ids separated by commas, at most MAX_SPACES; a 400 naming it otherwise."""
    if raw is None:
        raise ValidationError({"spaces": ["This query parameter is required: space ids separated by commas, 1,2,3."]})
    parts = [part.strip() for part in raw.split(",")]
    if not all(part.isdigit() and len(part) <= 18 and int(part) > 0 for part in parts):
        raise ValidationError({"spaces": ["must be space ids separated by commas, such as 1,2,3."]})
    if len(parts) > MAX_SPACES:
        raise ValidationError({"spaces": [f"asks for {len(parts)} spaces; at most {MAX_SPACES} at once."]})
    return [int(part) for part in parts]


@extend_schema_serializer(component_name="Reset")
class ResetOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    space_id = serializers.IntegerField()
    timestamp = InstantField()
    count = serializers.IntegerField()
    created = InstantField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)


RESET = {
    "id": 1,
    "space_id": 1,
    "timestamp": "2018-02-26T18:00:00.000Z",
    "count": 10,
    "created": "2026-12-01T05:58:00.846Z",
    "created_by": "ops",
}


class ResetListApi(APIView):
    """GET: a space's resets, in [start, end) when given. POST (staff): "at this instant there were N people"."""

    @extend_schema_serializer(component_name="NewReset")
    class InputSerializer(StrictSerializer):
        timestamp = InstantField()
        count = serializers.IntegerField(min_value=-(2**31), max_value=2**31 - 1)

    @extend_schema(
        operation_id="space_resets_list",
        parameters=[
            OpenApiParameter(
                "start", OpenApiTypes.DATETIME, description="Resets at or after this instant (local without a zone)."
            ),
            OpenApiParameter(
                "end", OpenApiTypes.DATETIME, description="Resets before this instant (local without a zone)."
            ),
            *PAGING_PARAMETERS,
        ],
        responses={
            200: page_of(ResetOutputSerializer(many=True), "oldest first"),
            **errors(400, 401, 403, 404),
        },
        examples=[OpenApiExample("One reset", value=[RESET])],
    )
    def get(self, request, space_id: str):
        params = request.query_params
        check_query_params(params, ("start", "end", *PAGING_PARAMS))
        space = space_get(space_id=int(space_id))
        start, end = (instant_param(params, name, keep_naive=True) for name in ("start", "end"))
        resets = reset_list(
            space_id=space.pk,
            start=None if start is None else placed(start, space.zone),
            end=None if end is None else placed(end, space.zone),
            page=page_request(params, shape=RESET_KEY),
        )
        return paged_response(request, ResetOutputSerializer(resets.rows, many=True).data, page=resets)

    @extend_schema(
        operation_id="space_resets_create",
        request=InputSerializer,
        responses={201: ResetOutputSerializer, **errors(400, 401, 403, 404, 409)},
        examples=[
            OpenApiExample(
                "Ten people at 18:00", value={"timestamp": "2018-02-26T18:00:00Z", "count": 10}, request_only=True
            ),
            OpenApiExample("The reset", value=RESET, response_only=True, status_codes=["201"]),
        ],
    )
    def post(self, request, space_id: str):
        space = space_get(space_id=int(space_id))
        data = validated_input(self.InputSerializer, request.data)
        reset = reset_create(space=space, timestamp=data["timestamp"], count=data["count"], created_by=request.user)
        return Response(ResetOutputSerializer(reset).data, status=status.HTTP_201_CREATED)


class ResetDetailApi(APIView):
    """DELETE (staff): remove a reset; the space is recalculated from its instant."""

    @extend_schema(operation_id="space_resets_destroy", responses={204: None, **errors(401, 403, 404, 409)})
    def delete(self, request, space_id: str, reset_id: str):
        reset_delete(reset=reset_get(space_id=int(space_id), reset_id=int(reset_id)))
        return Response(status=status.HTTP_204_NO_CONTENT)
