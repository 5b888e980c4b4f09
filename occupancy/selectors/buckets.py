"""Counts over time: a space's occupancy in buckets (count, min, max and when, time-weighted average, entrances,
exits, utilization, whether settled), computed in the database down to the JSON the API answers with.

One statement, whatever the number of buckets and spaces (its pieces are in occupancy.selectors.bucket_sql):
- it numbers the buckets from their edges;
- it aggregates the range's rows by bucket, or, when every edge is a five-minute mark, the range's five-minute
  blocks (which are the buckets themselves when those are five minutes long);
- it carries each bucket's last count into the next by one running maximum (a bucket without rows holds the
  count it started with);
- it writes each bucket as a JSON object.
Python joins the objects into arrays. Building the buckets in Python took longer than all the rest of a request
for a day of 288 (BENCHMARKS.md, "Counts over time").
"""

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from config.api import format_instant
from config.replicas import read_connection
from config.sql import among, db_instant, execute, q, values_rows
from history.selectors import history_check_readable
from occupancy.calendar import Interval, TooManyBuckets, bucket_edges, placed
from occupancy.latest import BLOCK, EPOCH, block_of, block_sql, count_sql, row_sql
from occupancy.selectors.bucket_sql import (
    PACKED,
    UNPACK_COUNT,
    UNPACK_PENDING,
    block_aggregate,
    block_buckets,
    dialect_of_connection,
    row_aggregate,
)
from spaces.models import Space

ZERO = timedelta(0)
MAX_SPACES = 100


@dataclass(frozen=True)
class SpaceSeries:
    space_id: int
    time_zone: str
    start: datetime
    end: datetime
    interval: Interval | None
    buckets_json: str  # a JSON array of the buckets, each an object of the fields README lists

    def buckets(self) -> list[dict]:
        return json.loads(self.buckets_json)


def space_series(
    *,
    space_ids: Sequence[int],
    start: datetime,
    end: datetime,
    interval: Interval | None,
    zone: ZoneInfo | None = None,
    now: datetime | None = None,
) -> list[SpaceSeries]:
    """Each space's counts over [start, end) in buckets of `interval` (one bucket when None), in the order asked.

    Days and weeks are local days in `zone`, by default each space's own time zone; so is a naive `start` or `end`
    (read with fold=0). Http404 for an unknown space; a ValidationError naming `end` for an empty range, and
    `interval` past occupancy.calendar.MAX_BUCKETS; ArchivedHistory for edges off five-minute marks that reach
    into an archived month.
    """
    cutoff = (now or timezone.now()) - settings.OCCUPANCY_SETTLE_AFTER
    asked = list(dict.fromkeys(space_ids))
    # Each group of spaces whose buckets have the same edges is counted by one statement. The edges depend on the
    # spaces' own time zones only for local days and local start or end, when no `zone` is given; only then are
    # the time zones read first.
    if zone is not None or (start.tzinfo and end.tzinfo and (interval is None or interval.fixed is not None)):
        groups = {zone.key if zone is not None else None: asked}
    else:
        time_zones = _time_zones(asked)
        groups = defaultdict(list)
        for space_id in asked:
            groups[time_zones.get(space_id, "UTC")].append(space_id)
    series = {}
    for zone_name, members in groups.items():
        edges = _edges(start, end, interval, ZoneInfo(zone_name or "UTC"))
        for space_id, (own_zone, buckets) in _buckets_json(members, edges, interval, cutoff).items():
            series[space_id] = SpaceSeries(space_id, zone_name or own_zone, edges[0], edges[-1], interval, buckets)
    if any(space_id not in series for space_id in asked):
        raise Http404
    return [series[space_id] for space_id in space_ids]


def _time_zones(space_ids: list[int]) -> dict[int, str]:
    """Each space's time zone, in raw SQL: the ORM took longer to build the query than to run it."""
    condition, params = among("id", space_ids)
    with read_connection().cursor() as cursor:
        cursor.execute(f"SELECT id, time_zone FROM {q(Space._meta.db_table)} WHERE {condition}", params)
        return dict(cursor.fetchall())


def _edges(start: datetime, end: datetime, interval: Interval | None, zone: ZoneInfo) -> list[datetime]:
    try:
        start, end = placed(start, zone), placed(end, zone)
        if start >= end:
            raise ValidationError({"end": [f"must be after start ({format_instant(start)}); the range is empty."]})
        return bucket_edges(start, end, interval, zone)
    except TooManyBuckets as exc:
        raise ValidationError({"interval": [str(exc)]}) from None
    except OverflowError:
        raise ValidationError({"interval": ["reaches past the last representable time."]}) from None


def _buckets_json(
    space_ids: list[int], edges: list[datetime], interval: Interval | None, cutoff: datetime
) -> dict[int, tuple[str, str]]:
    """Each space's time zone and its buckets between `edges` as a JSON array: one statement, one row per bucket
    (the time zone on the first). An unknown space has none.

    A bucket starts with the last count of the latest earlier bucket with rows (found by one running maximum,
    see PACKED), or else the count before the range; a bucket without rows holds it.
    """
    dialect = dialect_of_connection()
    # A VALUES list, not an array: it tells the planner how many spaces there are.
    ids, id_params = values_rows([(space_id,) for space_id in space_ids], ("bigint",))
    # Edges on five-minute marks (all but odd intervals and starts) read the blocks: one row per five minutes
    # that saw a change, instead of every change.
    if not _on_block_edges(edges, interval):
        # Archived months keep their blocks, not their rows (history.services).
        history_check_readable(start=edges[0])
        aggregate_of = row_aggregate
    elif interval is not None and interval.fixed == BLOCK:
        aggregate_of = block_buckets
    else:
        aggregate_of = block_aggregate
    grid = dialect.grid(edges, interval)
    aggregate, aggregate_params = aggregate_of(grid, dialect, space_ids, edges, cutoff)
    text = dialect.text
    # The count before the range and whether it is pending (occupancy.latest).
    pending = "CASE WHEN o.status = 'pending' AND o.modified > %s THEN 1 ELSE 0 END"
    average = (
        "CASE WHEN bucket IS NULL THEN c0 ELSE (c0 * (first_s - start_s) + area + end_count * (end_s - last_s)) "
        "/ (end_s - start_s) END"
    )
    utilization = dialect.rounded("CAST(high AS double precision) / capacity")
    bucket = dialect.json_object(
        start="start_text",
        end="end_text",
        count="COALESCE(end_count, c0)",
        min="low",
        max="high",
        max_at=f"CASE WHEN high_at = start_at THEN start_text ELSE {text('high_at')} END",
        average=dialect.rounded(average),
        entrances="entrances",
        exits="exits",
        utilization=f"CASE WHEN capacity IS NULL THEN NULL ELSE {utilization} END",
        settled=dialect.json_bool("end_at <= %s AND c0_pending = 0 AND pending = 0"),
    )
    sql = f"""
        WITH asked (id) AS ({ids}),
        spaces AS MATERIALIZED (
            SELECT s.id AS space_id, s.capacity, s.time_zone
            FROM asked v JOIN {q(Space._meta.db_table)} s ON s.id = v.id
        ),
        {grid.ctes},
        before AS MATERIALIZED (
            SELECT s.space_id, {count_sql("s.space_id", "%s", "%s", inclusive=False)} AS c,
                   COALESCE({row_sql("s.space_id", "%s", "%s", pending, inclusive=False)},
                            {block_sql("s.space_id", "%s", "CASE WHEN b.end_pending_changed > %s THEN 1 ELSE 0 END")},
                            0) AS p
            FROM spaces s
        ),
        aggregate AS MATERIALIZED ({aggregate}),
        numbered AS (
            SELECT s.space_id, s.capacity, b.c AS before_count, b.p AS before_pending, e.n, e.start_at, e.end_at,
                   e.start_text, e.end_text, e.start_s, e.end_s, a.bucket, a.low, a.high,
                   a.high_at, a.entrances, a.exits, a.pending, a.first_s, a.last_s, a.end_count, a.area,
                   MAX(CASE WHEN a.bucket IS NOT NULL THEN {PACKED} END)
                       OVER (PARTITION BY s.space_id ORDER BY e.n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                       AS prior
            FROM spaces s
            JOIN before b ON b.space_id = s.space_id
            CROSS JOIN edges e
            LEFT JOIN aggregate a ON a.space_id = s.space_id AND a.bucket = e.n
            WHERE e.end_at IS NOT NULL
        ),
        carried AS (
            SELECT space_id, n, capacity, start_at, end_at, start_text, end_text, start_s, end_s, bucket, high_at,
                   first_s, last_s, end_count, area,
                   COALESCE({UNPACK_COUNT.format("prior")}, before_count) AS c0,
                   COALESCE({UNPACK_PENDING.format("prior")}, before_pending) AS c0_pending,
                   COALESCE(pending, 0) AS pending, low, high,
                   COALESCE(entrances, 0) AS entrances, COALESCE(exits, 0) AS exits
            FROM numbered
        ),
        buckets AS (
            SELECT space_id, n, capacity, start_at, end_at, start_text, end_text, start_s, end_s, bucket, first_s,
                   last_s, end_count, area, c0, c0_pending, pending, entrances, exits,
                   CASE WHEN bucket IS NULL THEN c0 ELSE {dialect.least("c0", "low")} END AS low,
                   CASE WHEN bucket IS NULL THEN c0 ELSE {dialect.greatest("c0", "high")} END AS high,
                   CASE WHEN bucket IS NULL OR c0 >= high THEN start_at ELSE high_at END AS high_at
            FROM carried
        )
        SELECT space_id, CASE WHEN n = 1 THEN (SELECT time_zone FROM spaces s WHERE s.space_id = b.space_id) END,
               {bucket}
        FROM buckets b
        ORDER BY space_id, n"""
    start, lo, cutoff = db_instant(edges[0]), db_instant(block_of(edges[0])), db_instant(cutoff)
    before = [lo, start, lo, cutoff, lo, start, cutoff, lo]
    params = [*id_params, *grid.params, *before, *aggregate_params, cutoff]
    with read_connection().cursor() as cursor:
        execute(cursor, sql, params, rows=len(space_ids))
        rows = cursor.fetchall()
    found = {}
    for space_id, group in groupby(rows, itemgetter(0)):
        (_, time_zone, first), *others = group
        found[space_id] = (time_zone, "[" + ",".join([first, *(text for _, _, text in others)]) + "]")
    return found


def _on_block_edges(edges: list[datetime], interval: Interval | None) -> bool:
    if interval is not None and interval.fixed is not None:  # every edge but the last is the first plus steps
        edges = [edges[0], edges[-1]] if interval.fixed % BLOCK == ZERO else edges
    return all((edge - EPOCH) % BLOCK == ZERO for edge in edges)
