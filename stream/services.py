"""Publishing count changes: recorded in the recalculation's transaction, announced when it commits.

On PostgreSQL each change is also sent with NOTIFY inside that transaction: PostgreSQL delivers notifications
only when (and in the order) transactions commit, and drops those of a transaction that rolls back, so a
listener never hears of a batch that was not stored. SQLite has no NOTIFY; its one writer at a time commits
changes in id order, and the listener polls the table (stream.hub).
"""

from datetime import datetime

from django.conf import settings
from django.db import connection
from django.dispatch import receiver

from config.api import format_instant
from config.sql import db_instant, execute
from occupancy.latest import block_of, count_sql
from occupancy.selectors import space_list_with_counts
from occupancy.signals import counts_recalculated
from stream.models import CountChange, PublishedCount

CHANNEL = "occupancy_counts"


def change_message(change: CountChange) -> dict:
    """A change as the stream's `count` event carries it."""
    return {"id": change.pk, "space_id": change.space_id, "count": change.count, "timestamp": format_instant(change.at)}


# PostgreSQL: the whole of count_changes_publish in one statement, prepared once per session (config.sql.execute):
# each space's count now, upserted into PublishedCount only where it differs, a CountChange for each of those, the
# changes NOTIFYed, and the changes past STREAM_RETENTION dropped. The count now is occupancy.latest's.
PUBLISH_SQL = f"""
    WITH now_counts AS (
        SELECT s.id AS space_id, {count_sql("s.id", "%s::timestamptz", "%s::timestamptz", inclusive=True)} AS count
        FROM unnest(%s::bigint[]) AS s(id)
    ), changed AS (
        INSERT INTO stream_publishedcount AS p (space_id, count) SELECT space_id, count FROM now_counts
        ON CONFLICT (space_id) DO UPDATE SET count = EXCLUDED.count WHERE p.count <> EXCLUDED.count
        RETURNING p.space_id, p.count
    ), recorded AS (
        INSERT INTO stream_countchange (space_id, count, at)
        SELECT space_id, count, %s::timestamptz FROM changed ORDER BY space_id
        RETURNING id, space_id, count, at
    ), pruned AS (
        DELETE FROM stream_countchange WHERE at < %s::timestamptz
    )
    SELECT id, space_id, count, at, pg_notify(%s, json_build_array(json_build_object(
               'id', id, 'space_id', space_id, 'count', count, 'timestamp', %s::text))::text)
    FROM recorded ORDER BY id
"""


@receiver(counts_recalculated)
def count_changes_publish(sender, *, space_ids: list[int], now: datetime, **kwargs) -> list[CountChange]:
    """Record each recalculated space whose current count (at `now`) differs from the one last published.

    Runs inside occupancy_recalculate's transaction, holding the spaces' locks: two recalculations of one space
    publish one after the other, each comparing with what the other published."""
    if connection.vendor == "postgresql":
        return _publish_postgresql(space_ids, now)
    changes = _publish(space_ids, now)
    if changes:
        CountChange.objects.filter(at__lt=now - settings.STREAM_RETENTION).delete()
    return changes


def _publish_postgresql(space_ids: list[int], now: datetime) -> list[CountChange]:
    stamp, expired = db_instant(now), db_instant(now - settings.STREAM_RETENTION)
    lo = db_instant(block_of(now))
    params = [lo, stamp, lo, sorted(space_ids), stamp, expired, CHANNEL, format_instant(now)]
    with connection.cursor() as cursor:
        execute(cursor, PUBLISH_SQL, params, rows=1)
        return [CountChange(id=pk, space_id=space, count=count, at=at) for pk, space, count, at, _ in cursor]


def _publish(space_ids: list[int], now: datetime) -> list[CountChange]:
    current = dict(space_list_with_counts(at=now).filter(pk__in=space_ids).values_list("pk", "count"))
    published = dict(PublishedCount.objects.filter(space_id__in=space_ids).values_list("space_id", "count"))
    changed = sorted((space_id, count) for space_id, count in current.items() if published.get(space_id) != count)
    if not changed:
        return []
    PublishedCount.objects.bulk_create(
        [PublishedCount(space_id=space_id, count=count) for space_id, count in changed],
        update_conflicts=True,
        unique_fields=["space"],
        update_fields=["count"],
    )
    return CountChange.objects.bulk_create([CountChange(space_id=s, count=c, at=now) for s, c in changed])
