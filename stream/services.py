"""Publishing count changes: recorded in the recalculation's transaction, announced when it commits.

On PostgreSQL each change is also sent with NOTIFY inside that transaction: PostgreSQL delivers notifications
only when (and in the order) transactions commit, and drops those of a transaction that rolls back, so a
listener never hears of a batch that was not stored. SQLite has no NOTIFY; its one writer at a time commits
changes in id order, and the listener polls the table (stream.hub).
"""

import json
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.dispatch import receiver

from config.api import format_instant
from occupancy.selectors import space_list_with_counts
from occupancy.signals import counts_recalculated
from stream.models import CountChange, PublishedCount

CHANNEL = "occupancy_counts"
# NOTIFY's payload is at most 8,000 bytes; one change is about 90.
NOTIFY_BATCH = 50


def change_message(change: CountChange) -> dict:
    """A change as the stream's `count` event carries it."""
    return {"id": change.pk, "space_id": change.space_id, "count": change.count, "timestamp": format_instant(change.at)}


@receiver(counts_recalculated)
def count_changes_publish(sender, *, space_ids: list[int], now: datetime, **kwargs) -> list[CountChange]:
    """Record each recalculated space whose current count (at `now`) differs from the one last published.

    Runs inside occupancy_recalculate's transaction, holding the spaces' locks: two recalculations of one space
    publish one after the other, each comparing with what the other published."""
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
    changes = CountChange.objects.bulk_create([CountChange(space_id=s, count=c, at=now) for s, c in changed])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for start in range(0, len(changes), NOTIFY_BATCH):
                payload = json.dumps([change_message(c) for c in changes[start : start + NOTIFY_BATCH]])
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])
    CountChange.objects.filter(at__lt=now - settings.STREAM_RETENTION).delete()
    return changes
