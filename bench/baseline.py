"""The baselines: bare DRF views that do the least the service's endpoints must do, served by the same gunicorn,
on the same database, with the same authentication and permissions. Each benchmark reports the service's figure
as a ratio to its baseline's, measured in the same run, so that the machine's speed cancels out.

- BareCountApi: GET a count with one raw indexed "latest row at or before ts" query (no space lookup, no ORM).
- BareEventInsertApi: POST one event or a batch, validated by the service's own item validation, inserted with
  raw SQL into a bare table with the same unique key as dpu_dpuevent (no DPU lookup, no occupancy).
"""

from django.db import connection, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.db import BARE_TABLE
from config.api import format_instant, parse_instant
from config.permissions import CanPostEvents
from dpu.apis import ItemInvalid, event_from_item

INSERT_CHUNK = 500  # rows per INSERT, as the service's ingest

# The count lookup the service's index (occupancy_space_order) serves, walked backwards from (space, ts).
COUNT_SQL = (
    'SELECT "count" FROM occupancy_spaceoccupancy WHERE space_id = %s AND "timestamp" <= %s '
    'ORDER BY "timestamp" DESC, kind DESC, dpu_id DESC LIMIT 1'
)


class BareCountApi(APIView):
    """GET: the count of a space at `ts` (default now) by one raw query; 0 before its first row."""

    def get(self, request, space_id: str):
        raw = request.query_params.get("ts")
        try:
            at = parse_instant(raw, naive_is_utc=True) if raw is not None else timezone.now()
        except ValueError as exc:
            raise ValidationError({"ts": [str(exc)]}) from None
        with connection.cursor() as cursor:
            cursor.execute(COUNT_SQL, [int(space_id), connection.ops.adapt_datetimefield_value(at)])
            row = cursor.fetchone()
        return Response({"space_id": int(space_id), "ts": format_instant(at), "count": row[0] if row else 0})


class BareEventInsertApi(APIView):
    """POST one event or a JSON array: validated as the service validates items, then inserted with raw SQL."""

    permission_classes = [CanPostEvents]

    def post(self, request):
        items = request.data if isinstance(request.data, list) else [request.data]
        now = timezone.now()
        try:
            events = [event_from_item(item, now=now) for item in items]
        except ItemInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        stamp = connection.ops.adapt_datetimefield_value(now)
        with transaction.atomic(), connection.cursor() as cursor:
            for start in range(0, len(events), INSERT_CHUNK):
                chunk = events[start : start + INSERT_CHUNK]
                params = []
                for event in chunk:
                    instant = connection.ops.adapt_datetimefield_value(event.timestamp)
                    params += [stamp, stamp, event.serial, instant, event.direction, stamp]
                values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
                cursor.execute(
                    f'INSERT INTO {BARE_TABLE} (created, modified, dpu_id, "timestamp", direction, received_at) '
                    f'VALUES {values} ON CONFLICT (dpu_id, "timestamp", direction) DO NOTHING',
                    params,
                )
        return Response({"received": len(events)}, status=status.HTTP_201_CREATED)
