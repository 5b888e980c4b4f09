"""Keeping the five-minute blocks (OccupancyBlock) equal to the rows they sum up.

Every recalculation ends by rewriting the blocks of what it changed: from the block of its first changed row to the
block of the first row after its last one (whose starting count may be a changed row's). Blocks past that start
from an unchanged row and are left alone. Two statements at most, in SQL, whatever the number of spaces.
"""

from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from config.sql import db_instant, execute, q, typed, values_rows
from occupancy.latest import block_of, block_sql
from occupancy.models import OccupancyBlock, SpaceOccupancy
from occupancy.sql import LATEST

Kind = SpaceOccupancy.Kind


def floor_sql(expression: str) -> str:
    """SQL for the start of the block that holds the instant `expression`."""
    if connection.vendor == "postgresql":
        return f"date_bin('{OccupancyBlock.MINUTES} minutes', {expression}, timestamptz 'epoch')"
    # SQLite keeps instants as UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]", which sorts as time does.
    minutes = f"CAST(strftime('%%M', {expression}) AS INTEGER) / {OccupancyBlock.MINUTES} * {OccupancyBlock.MINUTES}"
    return f"(strftime('%%Y-%%m-%%d %%H:', {expression}) || printf('%%02d', {minutes}) || ':00')"


def seconds_sql(later: str, earlier: str) -> str:
    """SQL for the seconds from instant `earlier` to instant `later`."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


def block_end_sql(expression: str) -> str:
    if connection.vendor == "postgresql":
        return f"({expression} + interval '{OccupancyBlock.MINUTES} minutes')"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', {expression}, '+{OccupancyBlock.MINUTES} minutes')"


def blocks_refresh(
    cursor, spans: Sequence[tuple[int, datetime, datetime | None]], *, replace: bool, rows_end: datetime | None = None
) -> None:
    """Rewrite the blocks of each (space, since, last changed instant or None for "to the end").

    `replace` deletes the blocks of the range first, for recalculations that may have removed rows; ingest only
    adds rows, and its blocks are upserted. `rows_end`: every row of the spaces is before it (None: unknown), a
    constant that spares the database the months (partitions) after it.
    """
    if not spans:
        return
    occupancy, blocks, ts, count = (
        q(SpaceOccupancy._meta.db_table),
        q(OccupancyBlock._meta.db_table),
        q("timestamp"),
        q("count"),
    )
    rows = [(space_id, db_instant(block_of(since)), db_instant(end or LATEST)) for space_id, since, end in spans]
    values, params = values_rows(rows, ("bigint", "timestamptz", "timestamptz"))
    # Each range: from its first block (`lo`) up to the block of the first row after it (`hi`, the last to
    # rewrite), and the count just before `lo`: the end count of the block before, which this leaves alone.
    # The ranges' earliest start and end, as constants too: on PostgreSQL they prune the months (partitions)
    # before them when the statement starts.
    first_lo, first_end = min(row[1] for row in rows), min(row[2] for row in rows)
    after = (
        f"(SELECT MIN(o.{ts}) FROM {occupancy} o WHERE o.space_id = v.space_id AND o.{ts} > v.range_end "
        f"AND o.{ts} > {typed('timestamptz')} AND o.{ts} < {typed('timestamptz')})"
    )
    # The row after is read once, then floored (SQLite's floor repeats its argument).
    ranges = f"""v (space_id, lo, range_end) AS ({values}),
        f AS (SELECT v.space_id, v.lo, {after} AS after FROM v),
        g AS (
            SELECT f.space_id, f.lo, COALESCE({floor_sql("f.after")}, {typed("timestamptz")}) AS hi,
                   COALESCE({block_sql("f.space_id", "f.lo", "b.end_count")}, 0) AS before
            FROM f
        )"""
    end = db_instant(rows_end or LATEST)
    params += [first_end, end, db_instant(LATEST)]
    if replace:
        cursor.execute(
            f"""WITH {ranges}
            DELETE FROM {blocks} WHERE EXISTS (
                SELECT 1 FROM g WHERE g.space_id = {blocks}.space_id AND {blocks}.start >= g.lo
                AND {blocks}.start <= g.hi)""",
            params,
        )
    area = f"""start_count * {seconds_sql("first_ts", "block")} + inner_area
               + end_count * {seconds_sql(block_end_sql("block"), "last_ts")}"""
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    sql = f"""
        WITH {ranges}
        INSERT INTO {blocks} (space_id, start, start_count, low, high, high_at, entrances, exits, area, end_count,
                              pending_changed, end_pending_changed)
        SELECT space_id, block, start_count, {least}(start_count, rows_low), {greatest}(start_count, rows_high),
               CASE WHEN start_count >= rows_high THEN block ELSE rows_high_at END,
               entrances, exits, {area}, end_count, pending_changed, end_pending_changed
        FROM (
            SELECT space_id, block, MAX(CASE WHEN first = 1 THEN before_count END) AS start_count,
                   MIN(c) AS rows_low, MAX(c) AS rows_high, MIN(CASE WHEN c = top THEN ts END) AS rows_high_at,
                   SUM(CASE WHEN kind = {Kind.ENTRANCE} THEN 1 ELSE 0 END) AS entrances,
                   SUM(CASE WHEN kind = {Kind.EXIT} THEN 1 ELSE 0 END) AS exits,
                   MIN(ts) AS first_ts, MAX(ts) AS last_ts,
                   COALESCE(SUM(CASE WHEN last = 1 THEN 0 ELSE c * {seconds_sql("next_ts", "ts")} END), 0)
                       AS inner_area,
                   MAX(CASE WHEN last = 1 THEN c END) AS end_count,
                   MAX(CASE WHEN status = 'pending' THEN modified END) AS pending_changed,
                   MAX(CASE WHEN last = 1 AND status = 'pending' THEN modified END) AS end_pending_changed
            FROM (
                SELECT *, MAX(c) OVER (PARTITION BY space_id, block) AS top,
                       CASE WHEN prev_block IS NULL OR prev_block <> block THEN 1 ELSE 0 END AS first,
                       CASE WHEN next_block IS NULL OR next_block <> block THEN 1 ELSE 0 END AS last
                FROM (
                    SELECT r.*, COALESCE(LAG(c) OVER w, before) AS before_count, LAG(block) OVER w AS prev_block,
                           LEAD(block) OVER w AS next_block, LEAD(ts) OVER w AS next_ts
                    FROM (
                        SELECT o.space_id, {floor_sql(f"o.{ts}")} AS block, o.{ts} AS ts, o.kind, o.dpu_id,
                               o.{count} AS c, o.status, o.modified, g.before
                        FROM {occupancy} o JOIN g ON o.space_id = g.space_id AND o.{ts} >= g.lo
                             AND o.{ts} >= {typed("timestamptz")} AND o.{ts} < {typed("timestamptz")}
                             AND o.{ts} < CASE WHEN g.hi = {typed("timestamptz")} THEN g.hi
                                               ELSE {block_end_sql("g.hi")} END
                    ) r
                    WINDOW w AS (PARTITION BY space_id ORDER BY ts, kind, dpu_id)
                ) n
            ) m
            GROUP BY space_id, block
        ) b
        WHERE true
        ON CONFLICT (space_id, start) DO UPDATE SET
            start_count = excluded.start_count, low = excluded.low, high = excluded.high, high_at = excluded.high_at,
            entrances = excluded.entrances, exits = excluded.exits, area = excluded.area,
            end_count = excluded.end_count, pending_changed = excluded.pending_changed,
            end_pending_changed = excluded.end_pending_changed"""
    # Ingest runs this for every batch: small ones prepared, like its other statements (config.sql.execute).
    execute(cursor, sql, [*params, first_lo, end, db_instant(LATEST)], rows=None if replace else len(spans))
