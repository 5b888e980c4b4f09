"""The statements that write the rows of a recalculation: insert, recount, settle."""

import json
from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from config.sql import among, db_instant, q, typed
from occupancy.models import SpaceOccupancy
from occupancy.sql.base import SqlBase
from occupancy.sql.scopes import LATEST, NewEvents, Scope

Kind = SpaceOccupancy.Kind


class RowWrites(SqlBase):
    """Writing the rows of the scopes: the events' and resets' rows, their counts, their status."""

    def settle(self, space_ids: Sequence[int] | str | None) -> tuple[str, list]:
        """Settle the pending rows that are old enough, in the spaces (ids, a subquery, or None for all)."""
        if space_ids is None:
            spaces, params = "", []
        elif isinstance(space_ids, str):
            spaces, params = f"AND space_id IN ({space_ids})", []
        else:
            where, params = among("space_id", space_ids)
            spaces = f"AND {where}"
        sql = f"""UPDATE {self.occupancy} SET status = 'settled'
            WHERE status = 'pending' AND modified <= %s AND {q("timestamp")} <= %s {spaces}"""
        return sql, [self.cutoff, self.cutoff, *params]

    def _mapped(self) -> str:
        """Events from each scope's `since` that touch its space, each with its delta there: the assignment valid
        at its instant decides. +1 adds to the side it enters and takes from the other; NULL = NULL is not true,
        so outside works too."""
        ts = f"e.{q('timestamp')}"
        return f"""
            SELECT s.space_id, e.id AS event_id, {ts} AS ts, e.dpu_id,
                   CASE WHEN a.enters_id = s.space_id THEN e.direction ELSE -e.direction END AS delta,
                   s.start, s.allow_negative, s.last_ts, s.last_kind, s.last_dpu
            {self._assigned()}
            JOIN s ON (d.side_a_id = s.space_id OR d.side_b_id = s.space_id) AND {ts} >= s.since"""

    def update_flipped(self, scopes: Sequence[Scope]) -> tuple[str, list]:
        """Rows whose event still touches the space but now from the other side: the row changes, pending."""
        scope, params = self.values(scopes)
        o = self.occupancy
        sql = f"""
            WITH {scope}
            UPDATE {o} SET delta = m.delta, kind = m.kind, status = 'pending', modified = %s
            FROM (SELECT *, {self.KIND} AS kind FROM ({self._mapped()}) mapped) m
            WHERE {o}.space_id = m.space_id AND {o}.event_id = m.event_id AND {o}.delta <> m.delta"""
        return sql, [*params, self.now]

    def delete_stale(self, scopes: Sequence[Scope]) -> tuple[str, list]:
        """Event rows whose event no longer touches the space at all."""
        scope, params = self.values(scopes)
        o = self.occupancy
        sql = f"""
            WITH {scope}
            DELETE FROM {o}
            WHERE {o}.kind < {Kind.DAILY_RESET}
              AND EXISTS (SELECT 1 FROM s WHERE s.space_id = {o}.space_id AND {o}.{q("timestamp")} >= s.since)
              AND NOT EXISTS (SELECT 1 FROM ({self._mapped()}) m
                              WHERE m.space_id = {o}.space_id AND m.event_id = {o}.event_id)"""
        return sql, params

    def insert_mapped(self, scope: tuple[str, list], *, events: NewEvents | None = None) -> tuple[str, list]:
        """The rows of the events each scope covers (of `events` only, when given), counted as they go in.

        The counts are right for a scope that `appends` (they continue from its last count); the others are
        recounted after. A row appended after all the space's rows extends history and settles by its age
        alone; one landing among them is a late event rewriting history, pending like the rows after it that
        change.
        """
        insert, params = self._insert(events)
        return f"WITH {scope[0]} {insert}", [*scope[1], *params]

    def _insert(self, events: NewEvents | None) -> tuple[str, list]:
        """insert_mapped without its CTE `s`."""
        ids, id_params = ("", []) if events is None else events.where()
        order = self.ORDER.format(ts="ts")
        partition = f"PARTITION BY space_id {order}"
        sql = f"""
            INSERT INTO {self.occupancy} (created, modified, space_id, {q("timestamp")}, kind, event_id, dpu_id, delta,
                                          {q("count")}, status)
            SELECT {typed("timestamptz")}, {typed("timestamptz")}, space_id, ts, kind, event_id, dpu_id, delta,
                   {self.CLAMPED},
                   CASE WHEN (last_ts IS NULL OR (ts, kind, dpu_id) > (last_ts, last_kind, last_dpu))
                        AND ts <= %s THEN 'settled' ELSE 'pending' END
            FROM (
                SELECT *, MIN(running) OVER ({partition}) AS low
                FROM (
                    SELECT *, start + SUM(delta) OVER ({partition}) AS running
                    FROM (SELECT *, {self.KIND} AS kind FROM ({self._mapped()} {"WHERE " + ids if ids else ""}) m) k
                ) summed
            ) lowest
            WHERE true
            ON CONFLICT (space_id, event_id, {q("timestamp")}) DO NOTHING"""
        return sql, [self.now, self.now, self.cutoff, *id_params]

    def insert_daily(self, daily: Sequence[tuple[int, datetime]]) -> tuple[str, list]:
        """Daily reset rows (count 0) at (space, instant), where there are none yet."""
        # A daily reset's count is 0 whatever came before it: it is settled once its instant is old enough.
        spaces, instants = [space for space, _ in daily], [db_instant(instant) for _, instant in daily]
        if connection.vendor == "postgresql":
            source, params = (
                "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) AS r(space_id, ts)",
                [
                    spaces,
                    instants,
                ],
            )
        else:
            source = (
                "SELECT json_extract(value, '$[0]') AS space_id, json_extract(value, '$[1]') AS ts FROM json_each(%s)"
            )
            params = [json.dumps([[space, instant] for space, instant in zip(spaces, instants, strict=True)])]
        sql = f"""
            INSERT INTO {self.occupancy} (created, modified, space_id, {q("timestamp")}, kind, delta, {q("count")},
                                          status)
            SELECT {typed("timestamptz")}, {typed("timestamptz")}, space_id, ts, {Kind.DAILY_RESET}, 0, 0,
                   CASE WHEN ts <= {typed("timestamptz")} THEN 'settled' ELSE 'pending' END
            FROM ({source}) r
            WHERE true
            ON CONFLICT (space_id, {q("timestamp")}, kind) WHERE kind >= {Kind.DAILY_RESET} DO NOTHING"""
        return sql, [self.now, self.now, self.cutoff, *params]

    def insert_resets(self, scopes: Sequence[Scope]) -> tuple[str, list]:
        """The rows of the operators' resets from each scope's `since` on, where they have none yet (pending: a
        reset rewrites the counts after it)."""
        scope, params = self.values(scopes)
        ts = q("timestamp")
        sql = f"""
            WITH {scope}
            INSERT INTO {self.occupancy} (created, modified, space_id, {ts}, kind, reset_id, delta, {q("count")},
                                          status)
            SELECT %s, %s, r.space_id, r.{ts}, {Kind.RESET}, r.id, 0, r.{q("count")}, 'pending'
            FROM {self.reset} r JOIN s ON r.space_id = s.space_id AND r.{ts} >= s.since
            WHERE true
            ON CONFLICT (space_id, {ts}, kind) WHERE kind >= {Kind.DAILY_RESET} DO NOTHING"""
        return sql, [*params, self.now, self.now]

    def recount(
        self, scopes: Sequence[Scope], *, boundary: int, segmented: bool, rows_end: datetime | None = None
    ) -> tuple[str, list]:
        """Every count from each scope's `since` up to its `until`, from the count before it, in one statement.

        `segmented` when there may be resets among those rows: each starts a segment that counts on from the
        reset's count (the first segment from `start`), and resets keep their counts. Without, one running sum
        (a third of the window work, measured: a late event's cost per later row). Rows with ids above `boundary`
        were inserted by this recalculation and keep the status they were given; older rows whose count changes
        go back to pending.
        """
        scope, params = self.values(scopes)
        o, ts = self.occupancy, q("timestamp")
        order = self.ORDER.format(ts=ts)
        reset = f"kind >= {Kind.DAILY_RESET}"
        # Both ends bound the index range; the resets at `until` are where the next recalculation would start.
        # The scopes' whole span bounds them too, as constants: those the database prunes the months (partitions)
        # by, when it plans the statement.
        span = f"{{table}}.{ts} >= {typed('timestamptz')} AND {{table}}.{ts} <= {typed('timestamptz')}"
        first, last = min(scope.since for scope in scopes), max(scope.until or LATEST for scope in scopes)
        last = last if rows_end is None else min(last, rows_end)  # no row is at or after `rows_end`
        span_params = [db_instant(first), db_instant(last)]
        rows = f"""FROM {o} r JOIN s ON r.space_id = s.space_id AND r.{ts} >= s.since AND r.{ts} <= s.until
                   AND NOT (r.{ts} = s.until AND r.{reset})
                   WHERE {span.format(table="r")}"""
        columns = f"r.id, r.{q('count')} AS old_count, r.space_id, r.{ts}, r.kind, r.delta, r.dpu_id, s.allow_negative"
        if segmented:
            counted = f"""
                SELECT id, {ts}, old_count, CASE WHEN {reset} THEN old_count ELSE {self.CLAMPED} END AS new_count
                FROM (
                    SELECT *, MIN(running) OVER segment AS low
                    FROM (
                        SELECT *, COALESCE(FIRST_VALUE(reset_count) OVER segment, start) + SUM(delta) OVER segment
                                  AS running
                        FROM (
                            SELECT {columns}, s.start, CASE WHEN r.{reset} THEN r.{q("count")} END AS reset_count,
                                   SUM(CASE WHEN r.{reset} THEN 1 ELSE 0 END)
                                       OVER (PARTITION BY r.space_id {self.ORDER.format(ts="r." + ts)}) AS seg
                            {rows}
                        ) segmented
                        WINDOW segment AS (PARTITION BY space_id, seg {order})
                    ) summed
                    WINDOW segment AS (PARTITION BY space_id, seg {order})
                ) lowest"""
        else:
            inner = f"PARTITION BY r.space_id {self.ORDER.format(ts='r.' + ts)}"
            counted = f"""
                SELECT id, {ts}, old_count, {self.CLAMPED} AS new_count
                FROM (
                    SELECT *, MIN(running) OVER (PARTITION BY space_id {order}) AS low
                    FROM (SELECT {columns}, s.start + SUM(r.delta) OVER ({inner}) AS running {rows}) summed
                ) lowest"""
        sql = f"""
            WITH {scope}
            UPDATE {o}
            SET {q("count")} = n.new_count,
                status = CASE WHEN {o}.id > %s THEN {o}.status ELSE 'pending' END,
                modified = CASE WHEN {o}.id > %s THEN {o}.modified ELSE %s END
            FROM ({counted}) n
            WHERE {o}.id = n.id AND {o}.{ts} = n.{ts} AND {span.format(table=o)} AND n.new_count <> n.old_count"""
        return sql, [*params, boundary, boundary, self.now, *span_params, *span_params]
