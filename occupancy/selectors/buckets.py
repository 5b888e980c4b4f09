"""Counts over time: a space's occupancy in buckets (count, min, max and when, time-weighted average, entrances,
exits, utilization, whether settled), computed in the database down to the JSON the API answers with.

One statement, whatever the number of buckets and spaces:
- it numbers the buckets from their edges;
- it aggregates the range's rows by bucket in one ordered pass, or, when every edge is a five-minute mark, the
  range's five-minute blocks (PostgreSQL's width_bucket finds a row's bucket by binary search over the edges;
  SQLite gets it from occupancy.selectors.sqlite);
- it carries each bucket's last count into the next with window functions (a bucket without rows holds the
  count it started with);
- it writes each bucket as a JSON object.
Python joins the objects into arrays. Building the buckets in Python took longer than all the rest of a request
for a day of 288 (BENCHMARKS.md).
"""

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404
from django.utils import timezone

from config.api import format_instant
from config.sql import among, db_instant, execute, q, values_rows
from occupancy.calendar import Interval, TooManyBuckets, bucket_edges, placed
from occupancy.models import OccupancyBlock, SpaceOccupancy
from occupancy.services.blocks import BLOCK, EPOCH
from spaces.models import Space

Kind = SpaceOccupancy.Kind
ZERO = timedelta(0)
MAX_SPACES = 100
# The fields of a bucket, in the order the API writes them (README, "Counts over time").
BUCKET_FIELDS = (
    "start",
    "end",
    "count",
    "min",
    "max",
    "max_at",
    "average",
    "entrances",
    "exits",
    "utilization",
    "settled",
)
INSTANTS = ("start", "end", "max_at")  # the fields that are instants' text


@dataclass(frozen=True)
class SpaceSeries:
    space_id: int
    time_zone: str
    start: datetime
    end: datetime
    interval: Interval | None
    buckets_json: str  # a JSON array of the buckets, each an object of BUCKET_FIELDS

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
    `interval` past occupancy.calendar.MAX_BUCKETS.
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
    with connection.cursor() as cursor:
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
    dialect = _Dialect.of_connection()
    occupancy, ts = q(SpaceOccupancy._meta.db_table), q("timestamp")
    # A VALUES list, not an array: it tells the planner how many spaces there are.
    ids, id_params = values_rows([(space_id,) for space_id in space_ids], ("bigint",))
    # Edges on five-minute marks (all but odd intervals and starts) read the blocks: one row per five minutes
    # that saw a change, instead of every change.
    if not _on_block_edges(edges, interval):
        aggregate_of = _row_aggregate
    elif interval is not None and interval.fixed == BLOCK:
        aggregate_of = _block_buckets
    else:
        aggregate_of = _block_aggregate
    grid = dialect.grid(edges, interval)
    aggregate, aggregate_params = aggregate_of(grid, dialect, space_ids, edges, cutoff)
    latest = (
        f"FROM {occupancy} o WHERE o.space_id = s.space_id AND o.{ts} < %s "
        f"ORDER BY o.{ts} DESC, o.kind DESC, o.dpu_id DESC LIMIT 1"
    )
    text = dialect.text
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
            SELECT s.space_id, COALESCE((SELECT o.{q("count")} {latest}), 0) AS c,
                   COALESCE((SELECT CASE WHEN o.status = 'pending' AND o.modified > %s THEN 1 ELSE 0 END {latest}), 0)
                       AS p
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
    start, cutoff = db_instant(edges[0]), db_instant(cutoff)
    params = [*id_params, *grid.params, start, cutoff, start, *aggregate_params, cutoff]
    with connection.cursor() as cursor:
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


# A count and its pending flag, packed into one integer after something that orders them: the highest (or
# lowest) of such integers holds the count of the latest (earliest). The carry-forward finds the latest earlier
# bucket with rows by a running maximum of PACKED. (Orders stay below 2^29, counts within 32 bits: 63 bits.)
def packed(order: str, count: str, pending: str = "0") -> str:
    return f"({order} * 17179869184 + {pending} * 8589934592 + {count} + 4294967296)"


PACKED = packed("a.bucket", "a.end_count", "a.end_pending")
UNPACK_COUNT = "({0} - {0} / 8589934592 * 8589934592 - 4294967296)"
UNPACK_PENDING = "({0} / 8589934592 - {0} / 17179869184 * 2)"


def _row_aggregate(
    grid: "_Grid", dialect, space_ids: list[int], edges: list[datetime], cutoff: datetime
) -> tuple[str, list]:
    """For each space, each bucket (numbered from 1) that has rows: low, high and its first instant, entrances,
    exits, whether a row is pending, the first and last row's instants (seconds), the last row's count and
    pending, and the area (count x seconds) from each row to the next, but the last.

    One pass in the row order, which the index gives for one space, so there is nothing to sort: each row learns
    its bucket, the instant of the next row and that row's bucket (how long its count held, and whether it is its
    bucket's last); then one hash aggregate per bucket.
    """
    ts, occupancy, seconds = q("timestamp"), q(SpaceOccupancy._meta.db_table), dialect.seconds
    among_spaces, among_params = among("o.space_id", space_ids)
    sql = f"""
        SELECT space_id, bucket, MIN(c) AS low, MAX(c) AS high, {dialect.first_at_max("c", "ts")} AS high_at,
               SUM(CASE WHEN kind = {Kind.ENTRANCE} THEN 1 ELSE 0 END) AS entrances,
               SUM(CASE WHEN kind = {Kind.EXIT} THEN 1 ELSE 0 END) AS exits,
               MAX(pending) AS pending, {seconds("MIN(ts)")} AS first_s, {seconds("MAX(ts)")} AS last_s,
               MAX(CASE WHEN last = 1 THEN c END) AS end_count, MAX(CASE WHEN last = 1 THEN pending END) AS end_pending,
               COALESCE(SUM(CASE WHEN last = 1 THEN 0 ELSE c * ({seconds("next_ts")} - {seconds("ts")}) END), 0) AS area
        FROM (
            SELECT *, CASE WHEN next_bucket IS NULL OR next_bucket <> bucket THEN 1 ELSE 0 END AS last
            FROM (
                SELECT r.*, LEAD(ts) OVER w AS next_ts, LEAD(bucket) OVER w AS next_bucket
                FROM (
                    SELECT o.space_id, {grid.bucket_of(f"o.{ts}")} AS bucket, o.{ts} AS ts, o.kind,
                           o.dpu_id, o.{q("count")} AS c,
                           CASE WHEN o.status = 'pending' AND o.modified > %s THEN 1 ELSE 0 END AS pending
                    FROM {occupancy} o
                    WHERE {among_spaces} AND o.{ts} >= %s AND o.{ts} < %s
                ) r
                WINDOW w AS (PARTITION BY space_id ORDER BY ts, kind, dpu_id)
            ) n
        ) b
        GROUP BY space_id, bucket"""
    params = [db_instant(cutoff), *among_params, db_instant(edges[0]), db_instant(edges[-1])]
    return sql, params


def _block_aggregate(
    grid: "_Grid", dialect, space_ids: list[int], edges: list[datetime], cutoff: datetime
) -> tuple[str, list]:
    """What _row_aggregate says, from the five-minute blocks of buckets whose edges are all block edges, in one
    hash aggregate, with no window (a window over 50 spaces' day of blocks cost as much as the aggregate).

    Between two blocks nothing happened: the count held, at the earlier one's end count, which is the later one's
    start count. So the area between a bucket's first block's start and its last block's end is the blocks' areas
    plus, for each block, its start count times its start minus its end count times its end, less the first
    block's start count times its start, plus the last block's end count times its end. Seconds count from the
    range's start, which keeps the products small enough for a float8 to hold exactly enough. The first block's
    start count and the last block's end count and pending come from packed integers, as in PACKED.
    """
    blocks, seconds, length = q(OccupancyBlock._meta.db_table), dialect.seconds, BLOCK.total_seconds()
    among_spaces, among_params = among("b.space_id", space_ids)
    unpack_first, unpack_last = UNPACK_COUNT.format("MIN(first)"), UNPACK_COUNT.format("MAX(last)")
    sql = f"""
        SELECT space_id, bucket, MIN(low) AS low, MAX(high) AS high,
               {dialect.first_at_max("high", "high_at")} AS high_at, SUM(entrances) AS entrances, SUM(exits) AS exits,
               MAX(pending) AS pending,
               {seconds("MIN(start)")} AS first_s, {seconds("MAX(start)")} + {length} AS last_s,
               {unpack_last} AS end_count, {UNPACK_PENDING.format("MAX(last)")} AS end_pending,
               SUM(area + start_count * s - end_count * (s + {length})) - {unpack_first} * MIN(s)
                   + {unpack_last} * (MAX(s) + {length}) AS area
        FROM (
            SELECT space_id, bucket, low, high, high_at, entrances, exits, start, start_count, end_count, area, s,
                   CASE WHEN pending_changed > %s THEN 1 ELSE 0 END AS pending,
                   {packed("k", "start_count")} AS first,
                   {packed("k", "end_count", "CASE WHEN end_pending_changed > %s THEN 1 ELSE 0 END")} AS last
            FROM (
                SELECT b.*, {grid.block_bucket_of("b.start")} AS bucket, {seconds("b.start")} - %s AS s,
                       CAST(ROUND(({seconds("b.start")} - %s) / {length}) AS BIGINT) AS k
                FROM {blocks} b
                WHERE {among_spaces} AND b.start >= %s AND b.start < %s
            ) r
        ) g
        GROUP BY space_id, bucket"""
    cutoff, origin = db_instant(cutoff), edges[0].timestamp()
    params = [cutoff, cutoff, origin, origin, *among_params, db_instant(edges[0]), db_instant(edges[-1])]
    return sql, params


def _block_buckets(
    grid: "_Grid", dialect, space_ids: list[int], edges: list[datetime], cutoff: datetime
) -> tuple[str, list]:
    """What _block_aggregate says, for buckets of five minutes on block edges: each bucket is a block, or none,
    and nothing is left to aggregate (a day of them answered a fifth sooner)."""
    blocks, seconds, length = q(OccupancyBlock._meta.db_table), dialect.seconds, BLOCK.total_seconds()
    among_spaces, among_params = among("b.space_id", space_ids)
    sql = f"""
        SELECT space_id, {grid.block_bucket_of("start")} AS bucket, low, high, high_at, entrances, exits,
               CASE WHEN pending_changed > %s THEN 1 ELSE 0 END AS pending,
               {seconds("start")} AS first_s, {seconds("start")} + {length} AS last_s, end_count,
               CASE WHEN end_pending_changed > %s THEN 1 ELSE 0 END AS end_pending, area
        FROM {blocks} b
        WHERE {among_spaces} AND b.start >= %s AND b.start < %s"""
    cutoff = db_instant(cutoff)
    params = [cutoff, cutoff, *among_params, db_instant(edges[0]), db_instant(edges[-1])]
    return sql, params


@dataclass(frozen=True)
class _Grid:
    """The buckets, for the statement: CTEs that end with `edges (n, start_at, start_text, start_s, end_at,
    end_text, end_s)` (a bucket a row, numbered from 1; `_s` in seconds since the epoch; a last row without an
    end may follow), their parameters, and SQL for the number of the bucket that holds an instant, and of the one
    that holds a five-minute block's start when the edges are block edges."""

    ctes: str
    params: list
    bucket_of: Callable[[str], str]
    block_bucket_of: Callable[[str], str]


class _Dialect:
    """What the statement says differently on PostgreSQL and SQLite: PostgreSQL's in the first subclass."""

    @staticmethod
    def of_connection() -> "_Dialect":
        return _PostgreSQL() if connection.vendor == "postgresql" else _SQLite()

    def grid(self, edges: list[datetime], interval: Interval | None) -> _Grid:
        """The edges as one parameter (width_bucket's thresholds), then as a table of their numbers and text."""
        ctes = f"""thresholds (t) AS (SELECT {self.edges_parameter}),
        edge (n, start_at, start_text) AS ({self.edges_table}),
        edges AS (
            SELECT n, start_at, start_text, start_s, LEAD(start_at) OVER w AS end_at,
                   LEAD(start_text) OVER w AS end_text, LEAD(start_s) OVER w AS end_s
            FROM (SELECT *, {self.seconds("start_at")} AS start_s FROM edge) e
            WINDOW w AS (ORDER BY n)
        )"""
        return _Grid(ctes, [self.edges_literal(edges)], self._width_bucket, self._width_bucket)

    @staticmethod
    def _width_bucket(instant: str) -> str:
        return f"width_bucket({instant}, (SELECT t FROM thresholds))"


class _PostgreSQL(_Dialect):
    def grid(self, edges: list[datetime], interval: Interval | None) -> _Grid:
        """Minutes and hours: buckets of one length from the start, counted by generate_series instead of sent."""
        if interval is None or interval.fixed is None:
            return super().grid(edges, interval)
        step = "step * interval '1 second'"
        ctes = f"""grid AS (
            SELECT *, {self.seconds("t0")} AS t0_s
            FROM (SELECT %s::timestamptz, %s::timestamptz, %s::bigint, %s::integer) g (t0, t1, step, buckets)
        ),
        edges AS (
            SELECT n, start_at, {self.text("start_at")} AS start_text, {self.seconds("start_at")} AS start_s,
                   end_at, {self.text("end_at")} AS end_text, {self.seconds("end_at")} AS end_s
            FROM (
                SELECT n, t0 + (n - 1) * {step} AS start_at, LEAST(t0 + n * {step}, t1) AS end_at
                FROM grid, generate_series(1, buckets) n
            ) e
        ),
        thresholds (t) AS MATERIALIZED (SELECT ARRAY(SELECT start_at FROM edges ORDER BY n))"""
        params = [edges[0], edges[-1], interval.fixed // timedelta(seconds=1), len(edges) - 1]

        return _Grid(ctes, params, self._width_bucket, self._block_bucket)

    @staticmethod
    def _block_bucket(start: str) -> str:
        # Exact: a block's start and the grid's edges are whole seconds, which a float8 holds exactly.
        return f"floor(({_PostgreSQL.seconds(start)} - (SELECT t0_s FROM grid)) / (SELECT step FROM grid))::integer + 1"

    edges_parameter = "%s::timestamptz[]"
    edges_table = """SELECT n::integer, e, to_char(e AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        FROM unnest((SELECT t FROM thresholds)) WITH ORDINALITY u (e, n)"""

    @staticmethod
    def edges_literal(edges: list[datetime]) -> str:
        # One array literal, not a parameter per edge: adapting 8,760 instants one by one cost more than the query.
        return "{" + ",".join(edge.isoformat() for edge in edges) + "}"

    @staticmethod
    def first_at_max(value: str, at: str) -> str:
        """The earliest `at` among the rows with the highest `value`: arrays compare element by element. Epoch
        seconds in a float8 come back to the same microsecond."""
        return f"to_timestamp(-(MAX(ARRAY[{value}::float8, -date_part('epoch', {at})]))[2])"

    @staticmethod
    def seconds(instant: str) -> str:
        """Seconds since the epoch, a float."""
        return f"date_part('epoch', {instant})"

    @staticmethod
    def text(instant: str) -> str:
        """An instant as the API writes it (config.api.format_instant: milliseconds, cut, not rounded)."""
        return f"""to_char({instant} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""

    @staticmethod
    def rounded(number: str) -> str:
        """To six decimals, in floating point (through numeric took 0.4 µs a call)."""
        return f"round(({number}) * 1000000.0::float8) / 1000000.0::float8"

    @staticmethod
    def least(a: str, b: str) -> str:
        return f"LEAST({a}, {b})"

    @staticmethod
    def greatest(a: str, b: str) -> str:
        return f"GREATEST({a}, {b})"

    @staticmethod
    def json_bool(condition: str) -> str:
        return f"({condition})"

    @staticmethod
    def json_object(**fields: str) -> str:
        """A JSON object of numbers, booleans and instants' text (none needs escaping), written by concatenation:
        json_build_object looks up each argument's type on every call, 2.3 µs a bucket against 0.7. Only
        `utilization` may be null."""
        parts, literal = [], "{"
        for name, value in fields.items():
            literal += f'"{name}":'
            if name in INSTANTS:
                parts += [f"'{literal}\"'", value]
                literal = '",'
            else:
                parts += [
                    f"'{literal}'",
                    f"COALESCE(({value})::text, 'null')" if name == "utilization" else f"({value})::text",
                ]
                literal = ","
        return " || ".join([*parts, f"'{literal[:-1]}}}'"])


class _SQLite(_Dialect):
    """SQLite keeps instants as UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]", which sorts as time does."""

    edges_parameter = "%s"

    @property
    def edges_table(self) -> str:
        return f"SELECT key + 1, value, {self.text('value')} FROM json_each((SELECT t FROM thresholds))"

    @staticmethod
    def edges_literal(edges: list[datetime]) -> str:
        return json.dumps([db_instant(edge) for edge in edges])

    @staticmethod
    def first_at_max(value: str, at: str) -> str:
        return f"first_at_max({value}, {at})"  # occupancy.selectors.sqlite

    @staticmethod
    def seconds(instant: str) -> str:
        # Whole seconds from strftime, of the text without its fraction (which strftime would round to the
        # millisecond, possibly into the next second), plus the fraction: exact to the microsecond.
        return f"(CAST(strftime('%%s', substr({instant}, 1, 19)) AS INTEGER) + CAST(substr({instant}, 20) AS REAL))"

    @staticmethod
    def text(instant: str) -> str:
        fraction = f"substr(substr({instant}, 21) || '000', 1, 3)"  # milliseconds, cut
        return f"(substr({instant}, 1, 10) || 'T' || substr({instant}, 12, 8) || '.' || {fraction} || 'Z')"

    @staticmethod
    def rounded(number: str) -> str:
        return f"round({number}, 6)"

    @staticmethod
    def least(a: str, b: str) -> str:
        return f"min({a}, {b})"

    @staticmethod
    def greatest(a: str, b: str) -> str:
        return f"max({a}, {b})"

    @staticmethod
    def json_bool(condition: str) -> str:
        return f"json(CASE WHEN {condition} THEN 'true' ELSE 'false' END)"

    @staticmethod
    def json_object(**fields: str) -> str:
        return "json_object(" + ", ".join(f"'{name}', {value}" for name, value in fields.items()) + ")"
