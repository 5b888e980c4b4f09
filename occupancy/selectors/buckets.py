"""Counts over time: a space's occupancy in buckets (count, min, max and when, time-weighted average, entrances,
exits, utilization, whether settled), computed in the database.

Whatever the number of buckets, a handful of statements: the spaces, the count each starts with, and one
aggregate over the rows of the range, grouped by bucket (PostgreSQL's width_bucket finds a row's bucket by binary
search over the edges; SQLite gets the same function from occupancy.apps). Only one row per bucket reaches
Python, which carries each bucket's last count into the next.
"""

import json
import threading
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404
from django.utils import timezone

from config.api import format_instant
from config.sql import db_instant, from_db_instant, q, values_rows
from occupancy.calendar import Interval, TooManyBuckets, bucket_edges, placed
from occupancy.models import OccupancyBlock, SpaceOccupancy
from occupancy.services.blocks import BLOCK, EPOCH, block_end_sql, seconds_sql
from spaces.models import Space

Kind = SpaceOccupancy.Kind
ZERO = timedelta(0)
MAX_SPACES = 100


@dataclass(slots=True)
class Bucket:
    start: datetime
    end: datetime
    count: int  # after everything before `end`
    min: int
    max: int
    max_at: datetime  # the first instant in the bucket at which `max` was reached
    average: float  # time-weighted
    entrances: int
    exits: int
    utilization: float | None  # max / capacity
    settled: bool


@dataclass(frozen=True)
class SpaceSeries:
    space_id: int
    time_zone: str
    start: datetime
    end: datetime
    interval: Interval | None
    buckets: list[Bucket]


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
    `interval` past occupancy.calendar.MAX_BUCKETS.
    """
    cutoff = (now or timezone.now()) - settings.OCCUPANCY_SETTLE_AFTER
    spaces = {space.pk: space for space in Space.objects.filter(pk__in=set(space_ids))}
    missing = [space_id for space_id in space_ids if space_id not in spaces]
    if missing:
        raise Http404
    # Spaces whose buckets have the same edges (the same time zone) are counted by the same statements.
    groups: dict[str, list[int]] = defaultdict(list)
    for space_id in dict.fromkeys(space_ids):
        groups[zone.key if zone is not None else spaces[space_id].time_zone].append(space_id)
    series = {}
    for zone_name, members in groups.items():
        local = ZoneInfo(zone_name)
        edges = _edges(start, end, interval, local)
        starts = _counts_before(members, edges[0], cutoff)
        # Edges on five-minute marks (all but odd intervals and starts) read the blocks: one row per five minutes
        # that saw a change, instead of every change.
        aligned = all((edge - EPOCH) % BLOCK == ZERO for edge in edges)
        rows = (_block_rows if aligned else _bucket_rows)(members, edges, cutoff)
        for space_id in members:
            buckets = _buckets(edges, starts.get(space_id, (0, False)), rows[space_id], cutoff, spaces[space_id])
            series[space_id] = SpaceSeries(space_id, zone_name, edges[0], edges[-1], interval, buckets)
    return [series[space_id] for space_id in space_ids]


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


@dataclass(slots=True)
class _Row:
    """What the database says of the rows of one bucket of one space."""

    low: int
    high: int
    high_at: datetime  # the first row at `high`
    entrances: int
    exits: int
    pending: bool  # any row
    first: float  # seconds since the epoch: the first row's instant (the first block's start)
    last: float  # the last row's instant (the last block's end)
    end_count: int  # the last row's count
    end_pending: bool
    area: float  # count x seconds from each row to the next, but the last


def _buckets(edges, before: tuple[int, bool], rows: dict[int, _Row], cutoff, space: Space) -> list[Bucket]:
    count, pending = before
    buckets = []
    seconds = [edge.timestamp() for edge in edges]
    for number, (start, end) in enumerate(zip(edges, edges[1:], strict=False), start=1):
        row = rows.get(number)
        if row is None:  # nothing happened: the count held all along
            low = high = count
            high_at, average, entrances, exits = start, float(count), 0, 0
            bucket_pending = pending
        else:
            low, high = min(count, row.low), max(count, row.high)
            high_at = start if count >= row.high else row.high_at
            begins, ends = seconds[number - 1], seconds[number]
            area = count * (row.first - begins) + row.area + row.end_count * (ends - row.last)
            average = area / (ends - begins)
            entrances, exits = row.entrances, row.exits
            bucket_pending = pending or row.pending
            count, pending = row.end_count, row.end_pending
        buckets.append(
            Bucket(
                start=start,
                end=end,
                count=count,
                min=low,
                max=high,
                max_at=high_at,
                average=average,
                entrances=entrances,
                exits=exits,
                utilization=None if space.capacity is None else high / space.capacity,
                settled=end <= cutoff and not bucket_pending,
            )
        )
    return buckets


def _counts_before(space_ids: list[int], start: datetime, cutoff: datetime) -> dict[int, tuple[int, bool]]:
    """The count of each space just before `start`, and whether the row that holds it may still change (pending,
    and changed since the settle age: the settle job may be behind)."""
    values, params = values_rows([(space_id,) for space_id in space_ids], ("bigint",))
    ts = q("timestamp")
    latest = (
        f"FROM {q(SpaceOccupancy._meta.db_table)} o WHERE o.space_id = v.space_id AND o.{ts} < %s "
        f"ORDER BY o.{ts} DESC, o.kind DESC, o.dpu_id DESC LIMIT 1"
    )
    sql = f"""WITH v (space_id) AS ({values})
        SELECT v.space_id, (SELECT o.{q("count")} {latest}),
               (SELECT CASE WHEN o.status = 'pending' AND o.modified > %s THEN 1 ELSE 0 END {latest})
        FROM v"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, db_instant(start), db_instant(cutoff), db_instant(start)])
        return {space_id: (count or 0, bool(pending)) for space_id, count, pending in cursor.fetchall()}


def _bucket_rows(space_ids: list[int], edges: list[datetime], cutoff: datetime) -> dict[int, dict[int, _Row]]:
    """For each space, each bucket (numbered from 1) that has rows: one aggregate over the range's rows.

    One pass in the row order, which the index gives for one space, so there is nothing to sort: each row learns
    its bucket (a binary search over the edges), the instant of the next row and that row's bucket (how long its
    count held, and whether it is its bucket's last); then one hash aggregate per bucket.
    """
    ts, occupancy = q("timestamp"), q(SpaceOccupancy._meta.db_table)
    spaces, space_params = _among_spaces(space_ids, "o")
    thresholds, edge_params, max_at = _vendor(edges, value="c", at="ts")
    sql = f"""
        SELECT space_id, bucket, MIN(c), MAX(c), {max_at},
               SUM(CASE WHEN kind = {Kind.ENTRANCE} THEN 1 ELSE 0 END),
               SUM(CASE WHEN kind = {Kind.EXIT} THEN 1 ELSE 0 END),
               MAX(pending), {epoch("MIN(ts)")}, {epoch("MAX(ts)")},
               MAX(CASE WHEN last = 1 THEN c END), MAX(CASE WHEN last = 1 THEN pending END),
               SUM(CASE WHEN last = 1 THEN 0 ELSE c * {seconds_sql("next_ts", "ts")} END)
        FROM (
            SELECT *, CASE WHEN next_bucket IS NULL OR next_bucket <> bucket THEN 1 ELSE 0 END AS last
            FROM (
                SELECT r.*, LEAD(ts) OVER w AS next_ts, LEAD(bucket) OVER w AS next_bucket
                FROM (
                    SELECT o.space_id, width_bucket(o.{ts}, {thresholds}) AS bucket, o.{ts} AS ts, o.kind,
                           o.dpu_id, o.{q("count")} AS c,
                           CASE WHEN o.status = 'pending' AND o.modified > %s THEN 1 ELSE 0 END AS pending
                    FROM {occupancy} o
                    WHERE {spaces} AND o.{ts} >= %s AND o.{ts} < %s
                ) r
                WINDOW w AS (PARTITION BY space_id ORDER BY ts, kind, dpu_id)
            ) n
        ) b
        GROUP BY space_id, bucket"""
    params = [*edge_params, db_instant(cutoff), *space_params, db_instant(edges[0]), db_instant(edges[-1])]
    return _rows_by_bucket(space_ids, sql, params)


def _block_rows(space_ids: list[int], edges: list[datetime], cutoff: datetime) -> dict[int, dict[int, _Row]]:
    """What _bucket_rows says, from the five-minute blocks of buckets whose edges are all block edges.

    The count holds between two blocks: a block's gap to the next block of its bucket adds its end count for that
    long; the gap before a bucket's first block and after its last are the caller's, like around rows.
    """
    blocks = q(OccupancyBlock._meta.db_table)
    spaces, space_params = _among_spaces(space_ids, "b")
    thresholds, edge_params, max_at = _vendor(edges, value="high", at="high_at")
    gap = seconds_sql("next_start", block_end_sql("start"))
    sql = f"""
        SELECT space_id, bucket, MIN(low), MAX(high), {max_at}, SUM(entrances), SUM(exits),
               MAX(CASE WHEN pending_changed > %s THEN 1 ELSE 0 END),
               {epoch("MIN(start)")}, {epoch(block_end_sql("MAX(start)"))},
               MAX(CASE WHEN last = 1 THEN end_count END),
               MAX(CASE WHEN last = 1 AND end_pending_changed > %s THEN 1 ELSE 0 END),
               SUM(area + CASE WHEN last = 1 THEN 0 ELSE end_count * {gap} END)
        FROM (
            SELECT *, CASE WHEN next_bucket IS NULL OR next_bucket <> bucket THEN 1 ELSE 0 END AS last
            FROM (
                SELECT r.*, LEAD(start) OVER w AS next_start, LEAD(bucket) OVER w AS next_bucket
                FROM (
                    SELECT b.*, width_bucket(b.start, {thresholds}) AS bucket
                    FROM {blocks} b
                    WHERE {spaces} AND b.start >= %s AND b.start < %s
                ) r
                WINDOW w AS (PARTITION BY space_id ORDER BY start)
            ) n
        ) g
        GROUP BY space_id, bucket"""
    cutoff = db_instant(cutoff)
    params = [cutoff, cutoff, *edge_params, *space_params, db_instant(edges[0]), db_instant(edges[-1])]
    return _rows_by_bucket(space_ids, sql, params)


def epoch(instant: str) -> str:
    """SQL for an instant as seconds since the epoch on PostgreSQL (psycopg2 makes a float far faster than an
    aware datetime); SQLite's exact text as it is."""
    return f"EXTRACT(EPOCH FROM {instant})::float8" if connection.vendor == "postgresql" else instant


def _among_spaces(space_ids: list[int], alias: str) -> tuple[str, list]:
    if len(space_ids) == 1:
        return f"{alias}.space_id = %s", list(space_ids)
    if connection.vendor == "postgresql":
        return f"{alias}.space_id = ANY(%s::bigint[])", [list(space_ids)]
    return f"{alias}.space_id IN (SELECT value FROM json_each(%s))", [json.dumps(list(space_ids))]


def _vendor(edges: list[datetime], *, value: str, at: str) -> tuple[str, list, str]:
    """The bucket edges as a parameter width_bucket takes, and SQL for the earliest `at` among the rows with the
    highest `value`."""
    if connection.vendor == "postgresql":
        # Arrays compare element by element: the highest value, and of its rows the earliest.
        max_at = f"-(MAX(ARRAY[{value}::float8, -EXTRACT(EPOCH FROM {at})::float8]))[2]"
        # One array literal, not a parameter per edge: adapting 8,760 instants one by one cost more than the query.
        literal = "{" + ",".join(edge.isoformat() for edge in edges) + "}"
        return "%s::timestamptz[]", [literal], max_at
    instants = [db_instant(edge) for edge in edges]
    return "%s", [json.dumps(instants)], f"first_at_max({value}, {at})"  # occupancy.apps registers it


def _rows_by_bucket(space_ids: list[int], sql: str, params: list) -> dict[int, dict[int, _Row]]:
    found: dict[int, dict[int, _Row]] = {space_id: {} for space_id in space_ids}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for space_id, bucket, *values in cursor.fetchall():
            low, high, high_at, entrances, exits, pending, first, last, end_count, end_pending, area = values
            found[space_id][bucket] = _Row(
                low=low,
                high=high,
                high_at=_instant(high_at),
                entrances=entrances,
                exits=exits,
                pending=bool(pending),
                first=first if isinstance(first, float) else from_db_instant(first).timestamp(),
                last=last if isinstance(last, float) else from_db_instant(last).timestamp(),
                end_count=end_count,
                end_pending=bool(end_pending),
                area=float(area or 0),
            )
    return found


def _instant(value) -> datetime:
    """An instant from the bucket query: seconds since the epoch (PostgreSQL's max_at), else a database instant."""
    if isinstance(value, float):
        return datetime.fromtimestamp(round(value, 3), UTC)
    return from_db_instant(value)


class FirstAtMax:
    """SQLite aggregate first_at_max(count, instant): the earliest instant among the rows with the highest count
    (PostgreSQL's max_at compares arrays instead)."""

    def __init__(self):
        self.best = None

    def step(self, count, instant) -> None:
        if self.best is None or (-count, instant) < self.best:
            self.best = (-count, instant)

    def finalize(self):
        return None if self.best is None else self.best[1]


class _Thresholds(threading.local):
    """The edges of the statement running in this thread, parsed once. SQLite hands every call a new copy of the
    text: comparing it with the last one is a memcmp, where hashing it for a cache took 65 µs a call (202 kB for
    a year of hours)."""

    text: str | None = None
    parsed: list[str] = []

    def of(self, text: str) -> list[str]:
        if text != self.text:
            self.text, self.parsed = text, json.loads(text)
        return self.parsed


_thresholds = _Thresholds()


def sqlite_width_bucket(instant: str, edges: str) -> int:
    """PostgreSQL's width_bucket(operand, thresholds) for SQLite, where instants are text that sorts as time does
    and the thresholds a JSON list of them: how many thresholds are at or before `instant`."""
    return bisect_right(_thresholds.of(edges), instant)
