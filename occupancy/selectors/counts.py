"""Reading occupancy: the count of a space at an instant is one index lookup."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import IntegerField, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils import timezone

from config.paging import Page, PageRequest, keyset_page
from config.replicas import read_connection
from config.sql import db_instant, q
from occupancy.latest import BLOCKS, OCCUPANCY, block_of, count_sql
from occupancy.models import SpaceOccupancy
from spaces.models import Space


@dataclass(frozen=True)
class SpaceCount:
    space_id: int
    at: datetime
    count: int
    settled: bool


# The count of a space at an instant and whether it has settled (occupancy.latest: the latest row in the instant's
# own block, else its latest earlier block), joined to the space so that one statement also tells a missing space
# (no row at all) from one without occupancy rows yet (NULLs). Written in SQL because building the same query with
# the ORM costs more than running it. Whether the row has settled is compared in SQL too, as the ORM's filters
# compare instants, so SQLite's text instants need no conversion. Parameters: status, cutoff, cutoff, space id, lo,
# ts, space id, lo, space id.
COUNT_AT_SQL = f"""
    SELECT COALESCE(o."count", b.end_count),
           CASE WHEN o."count" IS NOT NULL THEN o.status = %s OR o.modified <= %s
                ELSE b.end_pending_changed IS NULL OR b.end_pending_changed <= %s END
    FROM {Space._meta.db_table} s
    LEFT JOIN (
        SELECT space_id, "count", status, modified FROM {OCCUPANCY}
        WHERE space_id = %s AND "timestamp" >= %s AND "timestamp" <= %s
        ORDER BY "timestamp" DESC, kind DESC, dpu_id DESC
        LIMIT 1
    ) o ON o.space_id = s.id
    LEFT JOIN (
        SELECT space_id, end_count, end_pending_changed FROM {BLOCKS}
        WHERE space_id = %s AND start < %s
        ORDER BY start DESC
        LIMIT 1
    ) b ON b.space_id = s.id
    WHERE s.id = %s
"""


def space_count_at(*, space: Space | int, at: datetime, now: datetime | None = None) -> SpaceCount:
    """How many people were in `space` (a Space or its id) at `at`: the count of its latest row at or before then
    (in an archived month, at the start of the five minutes that hold `at`; occupancy.latest).

    One query, which also tells a missing space (Http404) from one without rows yet (0). The count is settled
    when nothing recent can still change it: `at` is past the settle age and the row that holds the count has
    settled (or would have, were the settle job behind).
    """
    space_id = getattr(space, "pk", space)
    cutoff = (now or timezone.now()) - settings.OCCUPANCY_SETTLE_AFTER
    connection = read_connection()
    adapt = connection.ops.adapt_datetimefield_value
    lo, db_cutoff = adapt(block_of(at)), adapt(cutoff)
    params = [
        SpaceOccupancy.Status.SETTLED.value,
        db_cutoff,
        db_cutoff,
        space_id,
        lo,
        adapt(at),
        space_id,
        lo,
        space_id,
    ]
    with connection.cursor() as cursor:
        cursor.execute(COUNT_AT_SQL, params)
        found = cursor.fetchone()
    if found is None:
        raise Http404  # no message: the API answers {"detail": "Not found."}
    count, row_settled = found
    if count is None:  # before the space's first event
        return SpaceCount(space_id=space_id, at=at, count=0, settled=at <= cutoff)
    return SpaceCount(space_id=space_id, at=at, count=count, settled=at <= cutoff and bool(row_settled))


def space_list_with_counts(*, at: datetime | None = None) -> QuerySet[Space]:
    """Every space, each annotated with `count`: its count at `at` (default now), 0 before its first row.

    Rows can lie ahead of now (a space's next daily reset), hence always "at or before an instant".
    """
    at = at or timezone.now()
    column = f"{q(Space._meta.db_table)}.{q('id')}"
    count = count_sql(column, "%s", "%s", inclusive=True)
    lo = db_instant(block_of(at))
    return Space.objects.annotate(count=RawSQL(count, [lo, db_instant(at), lo], output_field=IntegerField())).order_by(
        "name"
    )


# The space list's order and its cursors' key: names are unique; the id keeps the key unique regardless.
SPACE_ORDER, SPACE_KEY = ("name", "id"), (str, int)


def space_list_page(*, at: datetime | None = None, page: PageRequest) -> Page:
    """One page of space_list_with_counts, by name."""
    return keyset_page(space_list_with_counts(at=at), fields=SPACE_ORDER, page=page)


def space_get_with_count(*, space_id: int, at: datetime | None = None) -> Space:
    """One space annotated with its count at `at` (default now), or Http404."""
    space = space_list_with_counts(at=at).filter(pk=space_id).first()
    if space is None:
        raise Http404  # no message: the API answers {"detail": "Not found."}
    return space
