"""The pieces of the counts-over-time statement (occupancy.selectors.buckets): the aggregate of each bucket's rows
or five-minute blocks, the buckets' grid, and what PostgreSQL and SQLite write differently."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from config.sql import among, db_instant, q
from occupancy.calendar import Interval
from occupancy.latest import BLOCK
from occupancy.models import OccupancyBlock, SpaceOccupancy

Kind = SpaceOccupancy.Kind
INSTANTS = ("start", "end", "max_at")  # the bucket fields that are instants' text


# A count and its pending flag, packed into one integer after something that orders them: the highest (or
# lowest) of such integers holds the count of the latest (earliest). The carry-forward finds the latest earlier
# bucket with rows by a running maximum of PACKED. (Orders stay below 2^29, counts within 32 bits: 63 bits.)
def packed(order: str, count: str, pending: str = "0") -> str:
    return f"({order} * 17179869184 + {pending} * 8589934592 + {count} + 4294967296)"


PACKED = packed("a.bucket", "a.end_count", "a.end_pending")
# Without `%`, which a statement run with parameters has to write `%%`, and a prepared one must not.
UNPACK_COUNT = "({0} - {0} / 8589934592 * 8589934592 - 4294967296)"
UNPACK_PENDING = "({0} / 8589934592 - {0} / 17179869184 * 2)"


def row_aggregate(
    grid: "Grid", dialect: "Dialect", space_ids: list[int], edges: list[datetime], cutoff: datetime
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


def block_aggregate(
    grid: "Grid", dialect: "Dialect", space_ids: list[int], edges: list[datetime], cutoff: datetime
) -> tuple[str, list]:
    """What row_aggregate says, from the five-minute blocks of buckets whose edges are all block edges, in one
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


def block_buckets(
    grid: "Grid", dialect: "Dialect", space_ids: list[int], edges: list[datetime], cutoff: datetime
) -> tuple[str, list]:
    """What block_aggregate says, for buckets of five minutes on block edges: each bucket is a block, or none,
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
class Grid:
    """The buckets, for the statement: CTEs that end with `edges (n, start_at, start_text, start_s, end_at,
    end_text, end_s)` (a bucket a row, numbered from 1; `_s` in seconds since the epoch; a last row without an
    end may follow), their parameters, and SQL for the number of the bucket that holds an instant, and of the one
    that holds a five-minute block's start when the edges are block edges."""

    ctes: str
    params: list
    bucket_of: Callable[[str], str]
    block_bucket_of: Callable[[str], str]


def dialect_of_connection() -> "Dialect":
    return PostgreSQL() if connection.vendor == "postgresql" else SQLite()


class Dialect:
    """What the statement says differently on PostgreSQL and SQLite: PostgreSQL's in the first subclass."""

    def grid(self, edges: list[datetime], interval: Interval | None) -> Grid:
        """The edges as one parameter (width_bucket's thresholds), then as a table of their numbers and text."""
        ctes = f"""thresholds (t) AS (SELECT {self.edges_parameter}),
        edge (n, start_at, start_text) AS ({self.edges_table}),
        edges AS (
            SELECT n, start_at, start_text, start_s, LEAD(start_at) OVER w AS end_at,
                   LEAD(start_text) OVER w AS end_text, LEAD(start_s) OVER w AS end_s
            FROM (SELECT *, {self.seconds("start_at")} AS start_s FROM edge) e
            WINDOW w AS (ORDER BY n)
        )"""
        return Grid(ctes, [self.edges_literal(edges)], self._width_bucket, self._width_bucket)

    @staticmethod
    def _width_bucket(instant: str) -> str:
        return f"width_bucket({instant}, (SELECT t FROM thresholds))"


class PostgreSQL(Dialect):
    def grid(self, edges: list[datetime], interval: Interval | None) -> Grid:
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

        return Grid(ctes, params, self._width_bucket, self._block_bucket)

    @staticmethod
    def _block_bucket(start: str) -> str:
        # Exact: a block's start and the grid's edges are whole seconds, which a float8 holds exactly.
        return f"floor(({PostgreSQL.seconds(start)} - (SELECT t0_s FROM grid)) / (SELECT step FROM grid))::integer + 1"

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


class SQLite(Dialect):
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
